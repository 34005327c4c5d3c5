// Child process for the concurrent-pull test: pulls one image into a shared state root.
import { ImageService } from '../../lib/image/image-service.js';

const [root, ref] = process.argv.slice(2);
const states: Record<string, number> = {};
const image = await new ImageService(root!).pull(ref!, {
  onProgress: (e) => {
    if (e.state === 'done' || e.state === 'cached') states[e.state] = (states[e.state] ?? 0) + 1;
  },
});
process.stdout.write(JSON.stringify({ manifestDigest: image.digest, states }));
