#!/usr/bin/env node
// Generates lib/security/seccomp/syscalls-x86_64.ts from the kernel UAPI header.
//
//   node scripts/gen-syscall-table.mjs [path/to/unistd_64.h]   rewrite the table
//   node scripts/gen-syscall-table.mjs --check [header]        exit 1 if the committed table is stale
//
// The header comes from the build host's linux-libc-headers, which usually lag the kernels
// berth runs on. Syscalls newer than the header are listed in NEWER_THAN_HEADER below, copied by
// hand from the kernel's arch/x86/entry/syscalls/syscall_64.tbl. x86_64 numbers are ABI: once
// assigned they never change, so the list only ever grows. A number the header also defines
// must agree, or generation fails.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, relative } from 'node:path';

const DEFAULT_HEADER = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(root, 'lib/security/seccomp/syscalls-x86_64.ts');

/** Syscalls added after the oldest header we generate from (Linux 6.5 .. 6.10). */
const NEWER_THAN_HEADER = {
  cachestat: 451,
  fchmodat2: 452,
  map_shadow_stack: 453,
  futex_wake: 454,
  futex_wait: 455,
  futex_requeue: 456,
  statmount: 457,
  listmount: 458,
  lsm_get_self_attr: 459,
  lsm_set_self_attr: 460,
  lsm_list_modules: 461,
  mseal: 462,
};

const args = process.argv.slice(2);
const check = args.includes('--check');
const header = args.find((a) => !a.startsWith('--')) ?? DEFAULT_HEADER;

const table = new Map();
for (const line of readFileSync(header, 'utf8').split('\n')) {
  const m = /^#define __NR_(\w+)\s+(\d+)\s*$/.exec(line);
  if (m) table.set(m[1], Number(m[2]));
}
if (table.size < 300 || table.get('read') !== 0 || table.get('execve') !== 59) {
  console.error(`${header} does not look like the x86_64 unistd_64.h (found ${table.size} syscalls)`);
  process.exit(1);
}
for (const [name, nr] of Object.entries(NEWER_THAN_HEADER)) {
  const fromHeader = table.get(name);
  if (fromHeader !== undefined && fromHeader !== nr) {
    console.error(`${name}: header says ${fromHeader}, NEWER_THAN_HEADER says ${nr}`);
    process.exit(1);
  }
  table.set(name, nr);
}
const byNumber = new Map();
for (const [name, nr] of table) {
  if (byNumber.has(nr)) {
    console.error(`syscall number ${nr} assigned to both ${byNumber.get(nr)} and ${name}`);
    process.exit(1);
  }
  byNumber.set(nr, name);
}

const entries = [...table].sort((a, b) => a[1] - b[1]);
const max = entries[entries.length - 1][1];
const text = `// GENERATED FILE, do not edit. Regenerate with:
//   node scripts/gen-syscall-table.mjs [/usr/include/x86_64-linux-gnu/asm/unistd_64.h]
// Source: the x86_64 asm/unistd_64.h UAPI header, plus the NEWER_THAN_HEADER list in the script.

/** Native x86_64 syscall numbers by name (no x32 or i386 numbers). */
export const SYSCALLS_X86_64: ReadonlyMap<string, number> = new Map([
${entries.map(([name, nr]) => `  ['${name}', ${nr}],`).join('\n')}
]);

/**
 * The highest syscall number in {@link SYSCALLS_X86_64}. Anything above it is newer than this
 * table, so the compiler cannot know whether a profile meant to allow it.
 */
export const MAX_SYSCALL_X86_64 = ${max};
`;

if (check) {
  let current = '';
  try {
    current = readFileSync(OUT, 'utf8');
  } catch {}
  if (current !== text) {
    console.error(`${relative(root, OUT)} is stale; run node scripts/gen-syscall-table.mjs`);
    process.exit(1);
  }
} else {
  writeFileSync(OUT, text);
  console.log(`wrote ${relative(root, OUT)}: ${entries.length} syscalls, max ${max}`);
}
