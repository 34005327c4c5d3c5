// A PaaS backend's core: build an app image from a Dockerfile, run it detached (it outlives
// this process) under a restart policy and a healthcheck, then read what happened from the
// event journal and the logs, and retire it. Offline: the image is built FROM scratch with the
// host's static busybox (`apt-get install busybox-static`); no registry, no Docker Hub.
// Runs on plain Node 20: every cleanup is try/finally.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from 'berth';

// The app crashes on its first boot (its writable layer keeps the marker across restarts, as
// Docker's does), then serves HTTP: the restart policy brings it back, the healthcheck sees it.
const APP = `
if [ ! -e /tmp/booted-once ]; then touch /tmp/booted-once; echo "first boot: simulated crash" >&2; exit 3; fi
echo "listening on 8080"
exec httpd -f -p 8080 -h /www
`;
const DOCKERFILE = `
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "mkdir", "-p", "/usr/bin", "/usr/sbin", "/sbin", "/tmp", "/www"]
RUN ["/bin/busybox", "--install", "-s"]
RUN echo ok > /www/index.html
COPY app.sh /app.sh
CMD ["/bin/sh", "/app.sh"]
`;

const context = mkdtempSync(join(tmpdir(), 'paas-app-'));
copyFileSync(process.env.BUSYBOX ?? '/bin/busybox', join(context, 'busybox'));
writeFileSync(join(context, 'app.sh'), APP);
writeFileSync(join(context, 'Dockerfile'), DOCKERFILE);

// The process that plays the daemon's part opens the runtime with `restartPolicies: true`: after
// a reboot it starts again the detached containers whose policy says so (`always`,
// `unless-stopped`). Other processes (a dashboard, a CLI) open it without.
const rt = await Runtime.open({ root: process.env.BERTH_ROOT, restartPolicies: true });
try {
  const img = await rt.images.build({
    context,
    tags: ['paas/app:1'],
    onProgress: (e) => {
      if (e.line === undefined) console.log(`[${e.step}/${e.total}] ${e.instruction}${e.cached ? ' (cached)' : ''}`);
    },
  });

  const since = new Date();
  const app = await rt.containers.create({
    image: img.id,
    name: 'app',
    lifetime: 'detached', // a monitor keeps it (policy, healthcheck, logs) with no Node process
    restart: 'on-failure:3',
    healthcheck: { test: ['CMD-SHELL', 'wget -q -O /dev/null http://127.0.0.1:8080/'], interval: '500ms', timeout: '2s', retries: 3 },
  });
  try {
    await app.start();
    await app.waitForHealthy({ timeout: 30_000 });
    const state = await app.inspect();
    console.log(`restarts: ${state.RestartCount}, health: ${state.State.Health?.Status}`);
    if (state.RestartCount !== 1) throw new Error(`expected one restart after the crash, saw ${state.RestartCount}`);

    // What happened since `since`, also what the monitor recorded while no process watched;
    // `until` makes the subscription end instead of following new events.
    for await (const e of rt.events({ since, until: new Date() })) console.log('event', e.action, e.name);
    for await (const entry of app.logs({ tail: 'all' })) console.log(`log ${entry.stream}: ${entry.line}`);

    await app.stop(); // resolves after the exit is recorded; `on-failure` does not restart a stop
  } finally {
    await app.remove({ force: true });
  }
  await rt.images.remove('paas/app:1');
} finally {
  await rt.close();
  rmSync(context, { recursive: true, force: true });
}
