/**
 * An HTTP proxy in front of a test registry that counts requests and can misbehave on blob
 * downloads: cut the connection after N bytes, or answer with a redirect.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxyBehaviour {
  /** Cut each blob GET after this many body bytes (while `cuts` > 0). */
  cutBlobAfter?: number;
  /** How many blob downloads to cut; Infinity for "registry down mid-pull". */
  cuts?: number;
  /** Answer blob GETs with a 307 to the registry itself. */
  redirectBlobs?: boolean;
}

export interface TestProxy {
  host: string;
  /** `GET /v2/<repo>/blobs/<digest>` -> number of requests. */
  blobGets: Map<string, number>;
  /** Range headers seen on blob GETs. */
  ranges: string[];
  behaviour: ProxyBehaviour;
  stop(): Promise<void>;
}

export async function startProxy(target: string, behaviour: ProxyBehaviour = {}): Promise<TestProxy> {
  const [targetHost, targetPort] = target.split(':') as [string, string];
  const blobGets = new Map<string, number>();
  const ranges: string[] = [];
  const proxy: Partial<TestProxy> = { blobGets, ranges, behaviour };
  const server = http.createServer((req, res) => {
    const isBlobGet = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
    if (isBlobGet) {
      const digest = /sha256:[a-f0-9]{64}/.exec(req.url!)![0];
      blobGets.set(digest, (blobGets.get(digest) ?? 0) + 1);
      if (req.headers.range) ranges.push(`${digest} ${req.headers.range}`);
      if (proxy.behaviour!.redirectBlobs && !req.url!.includes('redirected=1')) {
        res.writeHead(307, { location: `http://${target}${req.url}${req.url!.includes('?') ? '&' : '?'}redirected=1` });
        res.end();
        return;
      }
    }
    const up = http.request({ host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      const b = proxy.behaviour!;
      const bodyLength = Number(upRes.headers['content-length'] ?? 0);
      if (isBlobGet && b.cutBlobAfter !== undefined && (b.cuts ?? 0) > 0 && bodyLength > b.cutBlobAfter) {
        b.cuts = (b.cuts ?? 0) - 1;
        let sent = 0;
        upRes.on('data', (chunk: Buffer) => {
          if (sent >= b.cutBlobAfter!) return;
          if (sent + chunk.length >= b.cutBlobAfter!) {
            res.write(chunk.subarray(0, b.cutBlobAfter! - sent));
            sent = b.cutBlobAfter!;
            upRes.destroy();
            setImmediate(() => res.socket?.destroy());
            return;
          }
          sent += chunk.length;
          res.write(chunk);
        });
        upRes.on('end', () => res.end());
        return;
      }
      upRes.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.stop = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return proxy as TestProxy;
}
