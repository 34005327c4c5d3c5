/**
 * Which keys of the compose specification berth reads, which it knows but cannot honour
 * (a typed error, unless the caller passes `ignoreUnsupported`), and the rest (a warning:
 * most likely a typo, or a key newer than this list).
 * @module
 */

/** Service keys read by `service-options.ts`. */
export const SERVICE_KEYS = new Set([
  'image', 'build', 'command', 'entrypoint', 'environment', 'env_file', 'ports', 'expose', 'volumes', 'tmpfs', 'networks', 'network_mode',
  'depends_on', 'healthcheck', 'restart', 'deploy', 'scale', 'profiles', 'container_name', 'hostname', 'user', 'working_dir', 'labels',
  'extra_hosts', 'dns', 'cap_add', 'cap_drop', 'privileged', 'read_only', 'init', 'ulimits', 'mem_limit', 'cpus', 'pids_limit',
  'stop_signal', 'stop_grace_period', 'security_opt', 'stdin_open', 'tty', 'volumes_from', 'pull_policy', 'extends',
]);

/** Service keys of the specification that berth has no equivalent for. */
export const UNSUPPORTED_SERVICE_KEYS = new Set([
  'gpus', 'configs', 'secrets', 'devices', 'device_cgroup_rules', 'runtime', 'platform', 'isolation', 'cgroup', 'cgroup_parent', 'ipc', 'pid',
  'uts', 'userns_mode', 'links', 'external_links', 'logging', 'sysctls', 'shm_size', 'mem_reservation', 'mem_swappiness', 'memswap_limit',
  'oom_kill_disable', 'oom_score_adj', 'cpu_shares', 'cpu_quota', 'cpu_period', 'cpu_rt_runtime', 'cpu_rt_period', 'cpu_count', 'cpu_percent',
  'cpuset', 'blkio_config', 'credential_spec', 'storage_opt', 'group_add', 'dns_search', 'dns_opt', 'domainname', 'mac_address',
  'develop', 'annotations', 'attach', 'post_start', 'pre_stop', 'provider', 'models', 'use_api_socket', 'label_file', 'volumes_from_image',
]);

/** Keys under `deploy` berth reads. */
export const DEPLOY_KEYS = new Set(['replicas', 'resources']);

/** Top-level keys berth reads (`x-*` extensions are always allowed). */
export const TOP_KEYS = new Set(['name', 'services', 'networks', 'volumes', 'version']);

/** Top-level keys of the specification that berth has no equivalent for. */
export const UNSUPPORTED_TOP_KEYS = new Set(['configs', 'secrets', 'models']);

/** Keys of a top-level network. */
export const NETWORK_KEYS = new Set(['name', 'driver', 'external', 'internal', 'labels', 'ipam', 'attachable', 'enable_ipv6', 'driver_opts']);

/** Keys of a top-level volume. */
export const VOLUME_KEYS = new Set(['name', 'driver', 'external', 'labels', 'driver_opts']);
