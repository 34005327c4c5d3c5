// Before relying on berth on a new host (a CI runner, a container, a laptop): what does the
// runtime see, and what should be fixed? Exits 1 when something is missing, printing the fixes.
import { Runtime } from 'berth';

const rt = await Runtime.open({ root: process.env['BERTH_ROOT'] ?? '/var/lib/berth' });
try {
  const info = await rt.info();
  console.log(`berth ${info.ServerVersion} on ${info.OperatingSystem}, Linux ${info.KernelVersion}`);
  console.log(`storage: ${info.Driver} on ${info.Storage.backingFilesystem} (${info.Storage.reason})`);
  console.log(`cgroup v${info.CgroupVersion} (${info.Cgroups.mode}); usable: ${Object.entries(info.Cgroups.controllers).filter(([, s]) => s.usable).map(([n]) => n).join(' ')}`);
  console.log(`id mapping: ${info.IdMapping.mode}; bridge networks: ${info.Network.bridge.available ? `yes (${info.Network.firewall})` : 'no'}`);
  for (const fix of info.Fixes) console.log(`- ${fix.problem}${fix.fix ? `\n  fix: ${fix.fix}` : ''}`);
  process.exitCode = info.Fixes.length === 0 ? 0 : 1;
} finally {
  await rt.close();
}
