// Readiness probe for the test Kafka broker, with no npm dependency:
// sends a Metadata v4 request (all topics) over the Kafka wire protocol and
// succeeds when the broker answers and lists at least one live broker.
// usage: node probe.mjs HOST:PORT [timeout_ms]   -> prints "brokers=N cluster=ID", exit 0/1
import net from 'node:net';

const [host, portStr] = (process.argv[2] ?? '127.0.0.1:9092').split(':');
const timeoutMs = Number(process.argv[3] ?? 3000);

function request() {
  const clientId = Buffer.from('mizugiwa-probe');
  const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length + 4 + 1);
  let o = 0;
  o = body.writeInt16BE(3, o); // api_key Metadata
  o = body.writeInt16BE(4, o); // api_version 4 (non-flexible, kept by Kafka 4.x)
  o = body.writeInt32BE(7, o); // correlation id
  o = body.writeInt16BE(clientId.length, o);
  o += clientId.copy(body, o);
  o = body.writeInt32BE(-1, o); // topics: null = all
  body.writeInt8(0, o); // allow_auto_topic_creation = false
  const size = Buffer.alloc(4);
  size.writeInt32BE(body.length);
  return Buffer.concat([size, body]);
}

function parse(buf) {
  let o = 0;
  const corr = buf.readInt32BE(o); o += 4;
  if (corr !== 7) throw new Error(`bad correlation id ${corr}`);
  o += 4; // throttle_time_ms
  const n = buf.readInt32BE(o); o += 4;
  const brokers = [];
  for (let i = 0; i < n; i++) {
    const id = buf.readInt32BE(o); o += 4;
    const hl = buf.readInt16BE(o); o += 2;
    const h = buf.toString('utf8', o, o + hl); o += hl;
    const p = buf.readInt32BE(o); o += 4;
    const rl = buf.readInt16BE(o); o += 2;
    if (rl > 0) o += rl;
    brokers.push(`${id}@${h}:${p}`);
  }
  const cl = buf.readInt16BE(o); o += 2;
  const cluster = cl >= 0 ? buf.toString('utf8', o, o + cl) : null;
  return { brokers, cluster };
}

const sock = net.connect({ host, port: Number(portStr) });
const timer = setTimeout(() => { console.error('timeout'); sock.destroy(); process.exit(1); }, timeoutMs);
let acc = Buffer.alloc(0);
sock.on('connect', () => sock.write(request()));
sock.on('data', (d) => {
  acc = Buffer.concat([acc, d]);
  if (acc.length < 4 || acc.length < 4 + acc.readInt32BE(0)) return;
  clearTimeout(timer);
  try {
    const { brokers, cluster } = parse(acc.subarray(4, 4 + acc.readInt32BE(0)));
    sock.end();
    if (brokers.length === 0) { console.error('no live broker in metadata'); process.exit(1); }
    console.log(`brokers=${brokers.join(',')} cluster=${cluster}`);
    process.exit(0);
  } catch (e) { console.error(String(e)); process.exit(1); }
});
sock.on('error', (e) => { clearTimeout(timer); console.error(e.code ?? String(e)); process.exit(1); });
