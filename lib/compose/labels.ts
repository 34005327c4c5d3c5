/**
 * The labels Docker Compose puts on what it creates, so tools that know compose (`docker
 * compose ps`-like listings, testcontainers' compose support) find a berth stack's objects.
 * @module
 */
export const PROJECT = 'com.docker.compose.project';
export const SERVICE = 'com.docker.compose.service';
export const NUMBER = 'com.docker.compose.container-number';
export const ONEOFF = 'com.docker.compose.oneoff';
export const CONFIG_HASH = 'com.docker.compose.config-hash';
export const WORKING_DIR = 'com.docker.compose.project.working_dir';
export const CONFIG_FILES = 'com.docker.compose.project.config_files';
export const NETWORK = 'com.docker.compose.network';
export const VOLUME = 'com.docker.compose.volume';
/** The id of the image the container was created from (compose v2 writes it too). */
export const IMAGE = 'com.docker.compose.image';
