/** Where this host mounts cgroup2: the unified root on v2, /sys/fs/cgroup/unified on hybrid hosts. */
import { readFileSync } from 'node:fs';

/** The mount point of this host's cgroup2 hierarchy, or undefined when there is none. */
export function cgroup2Mount(): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (post?.startsWith('cgroup2 ')) return pre!.split(' ')[4];
  }
  return undefined;
}
