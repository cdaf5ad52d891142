/* global process, console, Buffer */
// Memory-backed upstream: N random blobs of SIZE bytes; GET /list -> digests.
import http from 'node:http';
import { createHash, randomFillSync } from 'node:crypto';
const n = Number(process.env.N ?? 4),
  size = Number(process.env.SIZE ?? 200e6);
const blobs = new Map();
for (let i = 0; i < n; i++) {
  const b = Buffer.allocUnsafe(size);
  randomFillSync(b);
  blobs.set('sha256:' + createHash('sha256').update(b).digest('hex'), b);
}
const server = http.createServer((req, res) => {
  if (req.url === '/list') {
    res.end(JSON.stringify([...blobs.keys()]));
    return;
  }
  if (req.url === '/v2/') {
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    res.end('{}');
    return;
  }
  const m = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url);
  const b = m && blobs.get(m[1]);
  if (!b) {
    res.statusCode = 404;
    res.setHeader('content-type', 'application/json');
    res.end('{"errors":[{"code":"BLOB_UNKNOWN","message":"x"}]}');
    return;
  }
  res.writeHead(200, {
    'Content-Length': b.length,
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': m[1],
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  let off = 0;
  const C = 1 << 20;
  const pump = () => {
    while (off < b.length) {
      const ok = res.write(b.subarray(off, off + C));
      off += C;
      if (!ok) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('ready'));
