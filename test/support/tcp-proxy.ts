/**
 * @module A TCP proxy on a free loopback port in front of a real server, for
 * the network faults a client must survive: cut() drops every open connection
 * (a control plane restarting, a NAT timing out), refuse()/accept() stop and
 * resume listening on the same port. With `tls`, it terminates TLS with the
 * given certificate, so a client meets an endpoint it cannot verify.
 */
import { createServer as createTcpServer, connect, type AddressInfo, type Server, type Socket } from "node:net";
import { readFile } from "node:fs/promises";
import { createServer as createTlsServer } from "node:tls";

export interface TcpProxy {
  port: number;
  /** Connections accepted so far. */
  accepted(): number;
  /** Connections that opened with a WebSocket upgrade request. */
  upgrades(): number;
  cut(): void;
  refuse(): Promise<void>;
  accept(): Promise<void>;
  stop(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }, opts: { tls?: { certPath: string; keyPath: string } } = {}): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  let upgrades = 0;
  const onConnection = (client: Socket) => {
    accepted++;
    client.once("data", (head: Buffer) => {
      if (/^upgrade: websocket\r$/im.test(head.toString("latin1"))) upgrades++;
    });
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  };
  const tls = opts.tls ? { cert: await readFile(opts.tls.certPath), key: await readFile(opts.tls.keyPath) } : undefined;
  const make = (): Server => (tls ? createTlsServer(tls, onConnection) : createTcpServer(onConnection));
  const listen = (srv: Server, port: number) => new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(port, "127.0.0.1", () => resolve());
  });
  let server: Server | undefined = make();
  await listen(server, 0);
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
    const s = server;
    server = undefined;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  const cut = () => {
    for (const s of sockets) s.destroy();
  };
  const refuse = async () => {
    // close() waits for open connections, so they are cut first.
    const closed = close();
    cut();
    await closed;
  };
  return {
    port,
    accepted: () => accepted,
    upgrades: () => upgrades,
    cut,
    refuse,
    async accept() {
      if (server) return;
      server = make();
      await listen(server, port);
    },
    stop: refuse,
  };
}
