/**
 * @module bench/shaped-relay
 * A TCP relay that makes a loopback upstream look like one across the internet: every connection
 * pays a round trip to open (the TCP handshake), every byte is delayed by half the round trip each
 * way, and each connection, each direction, is capped at a bandwidth (a CDN edge serves one
 * connection at tens of MB/s, not at loopback's GB/s). Run as its own process, so its CPU is its own:
 *
 *   node --import tsx bench/shaped-relay.ts <listen host:port> <target host:port> [rttMs] [MB/s]
 *
 * It prints `listening <host:port>` once ready, and `bytes <n>` (relayed from the target) on SIGTERM.
 * Not modelled: TCP slow start and loss (a warm CDN connection is near its window anyway).
 */
import { connect, createServer, type Socket } from 'node:net';

/** Bytes waiting in one direction before its source is paused: a few bandwidth-delay products. */
function queueLimit(rttMs: number, bytesPerMs: number): number {
  return Math.max(256 * 1024, Math.ceil(4 * rttMs * bytesPerMs));
}

/**
 * One direction of a connection: chunks are sent at max(arrival + rtt/2, when the link is free),
 * and the link is busy for size / rate after each. One timer per direction, at the head's time.
 */
class ShapedPipe {
  private readonly queue: { chunk: Buffer; at: number }[] = [];
  private queued = 0;
  /** When the capped link can take the next byte (ms, performance.now()). */
  private free = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly delayMs: number,
    private readonly bytesPerMs: number,
    /** No byte leaves before this (ms): the handshake's round trip. */
    private readonly openAt: number,
    /** Told of the bytes it sent on. */
    private readonly count: (bytes: number) => void,
  ) {
    const limit = queueLimit(delayMs * 2, bytesPerMs);
    from.on('data', (chunk: Buffer) => {
      const arrival = Math.max(performance.now(), this.openAt) + this.delayMs;
      const at = Math.max(arrival, this.free);
      this.free = at + chunk.byteLength / this.bytesPerMs;
      this.queue.push({ chunk, at });
      this.queued += chunk.byteLength;
      if (this.queued >= limit) from.pause();
      this.schedule();
    });
    from.on('end', () => {
      this.ended = true;
      this.schedule();
    });
    to.on('drain', () => this.flush());
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const head = this.queue[0];
    if (head === undefined) {
      if (this.ended) this.to.end();
      return;
    }
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.flush();
      },
      Math.max(0, head.at - performance.now()),
    );
  }

  private flush(): void {
    const now = performance.now();
    let writable = true;
    while (writable) {
      const head = this.queue[0];
      // Timers fire up to a millisecond late or early: send what is due within half a millisecond.
      if (head === undefined || head.at > now + 0.5) break;
      this.queue.shift();
      this.queued -= head.chunk.byteLength;
      this.count(head.chunk.byteLength);
      writable = this.to.write(head.chunk);
    }
    if (this.from.isPaused() && this.queued < queueLimit(this.delayMs * 2, this.bytesPerMs) / 2) this.from.resume();
    if (writable) this.schedule();
  }
}

function main(): void {
  const [listen, target, rttArg, rateArg] = process.argv.slice(2);
  if (listen === undefined || target === undefined) {
    throw new Error('usage: shaped-relay <listen host:port> <target host:port> [rttMs] [MB/s]');
  }
  const rttMs = Number(rttArg ?? 20);
  const bytesPerMs = (Number(rateArg ?? 30) * 1e6) / 1000;
  const [targetHost, targetPort] = splitHostPort(target);
  const [listenHost, listenPort] = splitHostPort(listen);
  let relayed = 0;
  const sockets = new Set<Socket>();
  const server = createServer({ noDelay: true }, (client) => {
    const upstream = connect({ host: targetHost, port: targetPort, noDelay: true });
    sockets.add(client);
    sockets.add(upstream);
    const openAt = performance.now() + rttMs;
    new ShapedPipe(client, upstream, rttMs / 2, bytesPerMs, openAt, () => undefined);
    new ShapedPipe(upstream, client, rttMs / 2, bytesPerMs, openAt, (bytes) => (relayed += bytes));
    // An end is passed on after the bytes still in flight (each pipe ends its target once drained);
    // only an error, or the client going away, cuts both at once.
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', cut).on('close', () => {
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on('error', cut).on('close', () => sockets.delete(upstream));
  });
  server.listen(listenPort, listenHost, () => console.log(`listening ${listen}`));
  process.on('SIGTERM', () => {
    console.log(`bytes ${relayed}`);
    for (const socket of sockets) socket.destroy();
    server.close(() => process.exit(0));
  });
}

function splitHostPort(value: string): [string, number] {
  const colon = value.lastIndexOf(':');
  return [value.slice(0, colon), Number(value.slice(colon + 1))];
}

main();
