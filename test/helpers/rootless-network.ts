/**
 * Skip conditions of the rootless networking tests: the user-mode stacks and the tools the
 * tests themselves use, each named with its Debian package (scripts/test-deps.sh installs them).
 * @module
 */
import { installedUserModeTools } from '../../lib/network/usermode-network.js';
import { findTool } from '../../lib/network/find-tool.js';
import { rootlessSkipReason } from './rootless-user.js';

export interface RootlessNetworkNeeds {
  /** slirp4netns besides pasta (tests of both stacks). */
  slirp4netns?: boolean;
  /** nft (user networks' forward rules). */
  nft?: boolean;
  /** python3, with what the test uses it for. */
  python3?: string;
}

/** A skip reason for `describe(..., { skip })`, or false when the test can run here. */
export function rootlessNetworkSkipReason(needs: RootlessNetworkNeeds = {}): string | false {
  const base = rootlessSkipReason();
  if (base) return base;
  const tools = installedUserModeTools();
  if (needs.slirp4netns && (tools.pasta === null || tools.slirp4netns === null)) return 'pasta and slirp4netns are needed: apt-get install passt slirp4netns (scripts/test-deps.sh)';
  if (tools.pasta === null) return 'pasta is needed: apt-get install passt (scripts/test-deps.sh)';
  if (needs.nft && !findTool('nft')) return 'nft is needed: apt-get install nftables (scripts/test-deps.sh)';
  if (needs.python3 !== undefined && !findTool('python3')) return `python3 is needed (${needs.python3})`;
  return false;
}
