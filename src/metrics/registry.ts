import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';

/** One registry per process; every component registers its metrics here with the `mizugiwa_` prefix. */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'mizugiwa_process_' });

/** Serves GET /metrics on HOST:PORT (loopback by default) for processes without the api. */
export function serveMetrics(listen: string): Promise<Server> {
  const idx = listen.lastIndexOf(':');
  const host = idx > 0 ? listen.slice(0, idx) : '127.0.0.1';
  const port = Number(listen.slice(idx + 1));
  const server = createServer(async (req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('not found; try /metrics\n');
      return;
    }
    res.writeHead(200, { 'content-type': registry.contentType }).end(await registry.metrics());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
