// Build an image from a Dockerfile in this process, print Docker-style progress, run it.
// `node --import tsx examples/build-image.ts <context dir> [tag]`; the Dockerfile's base must be
// in the store or pullable (e.g. a loopback registry), or `scratch`. The state dir is
// $BERTH_ROOT, else /var/lib/berth. Type-checked and run by test/examples/examples.test.ts.
import { DockerfileSyntaxError, Runtime, isBerthError } from 'berth';

const context = process.argv[2] ?? process.cwd();
const tag = process.argv[3] ?? 'example/built:1';
const rt = await Runtime.open({ root: process.env.BERTH_ROOT });
try {
  const img = await rt.images.build({
    context,
    tags: [tag],
    buildArgs: { VERSION: '1' },
    onProgress: (e) => {
      if (e.line !== undefined) console.log(`   ${e.line}`);
      else console.log(`Step ${e.step}/${e.total} : ${e.instruction}${e.cached ? '\n ---> Using cache' : ''}`);
    },
  });
  console.log(`Successfully built ${img.id.slice(7, 19)}, tagged ${tag}`);
  const r = await rt.run(img.id, ['sh', '-c', 'echo hello from the built image']);
  console.log(r.stdout.trim());
} catch (e) {
  if (isBerthError(e) && e instanceof DockerfileSyntaxError) console.error(`${e.file}:${e.line}:${e.column}: ${e.message}`);
  else throw e;
} finally {
  await rt.close();
}
