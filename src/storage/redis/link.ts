import type { ResolvedBalancerOptions } from '../../config/resolve-options';
import { CommandRunner, within } from './command-runner';
import { createRedisConnections, type RedisClient, type RedisConnections } from './connection';

export interface LinkEvents {
  /** The command connection failed or closed. */
  down(err: Error): void;
  /** The command connection is ready again. */
  ready(): void;
  /** A grant message for one of this process's waiters. */
  grant(id: string): void;
}

/**
 * This process's link to Redis: the command connection with its runner, and the subscriber
 * listening on this process's grant channel.
 */
export class RedisLink {
  readonly runner: CommandRunner;
  private readonly detach: Array<() => void> = [];

  private constructor(
    private readonly conn: RedisConnections,
    commandTimeoutMs: number,
  ) {
    this.runner = new CommandRunner(conn.commands, commandTimeoutMs);
  }

  /**
   * Connect (waiting up to `waitMs` for the command connection) and subscribe to `channel`.
   * `ready` is false when Redis did not answer in time; the connections keep retrying.
   */
  static async open(
    storage: ResolvedBalancerOptions['storage'],
    opts: { commandTimeoutMs: number; waitMs: number; channel: string },
    events: LinkEvents,
  ): Promise<{ link: RedisLink; ready: boolean }> {
    const conn = createRedisConnections(storage);
    const link = new RedisLink(conn, opts.commandTimeoutMs);
    const onError = (err: Error): void => events.down(err);
    const onClose = (): void => events.down(new Error('connection closed'));
    const onReady = (): void => events.ready();
    conn.commands.on('error', onError);
    conn.commands.on('close', onClose);
    conn.commands.on('ready', onReady);
    link.detach.push(() => {
      conn.commands.off('error', onError);
      conn.commands.off('close', onClose);
      conn.commands.off('ready', onReady);
    });
    conn.subscriber.on('error', () => undefined);
    conn.subscriber.on('message', (_channel: string, id: string) => events.grant(id));
    // Subscribe on every 'ready', never before: a SUBSCRIBE sent while ioredis still runs its
    // ready check breaks that check, and the reconnect after it does not resubscribe. A repeated
    // SUBSCRIBE of the same channel is a no-op for Redis.
    let markSubscribed!: () => void;
    const subscribed = new Promise<void>((r) => (markSubscribed = r));
    const subscribe = (): void => {
      conn.subscriber.subscribe(opts.channel).then(markSubscribed, () => undefined);
    };
    conn.subscriber.on('ready', subscribe);
    if (conn.subscriber.status === 'ready') subscribe();
    for (const c of [conn.commands, conn.subscriber]) {
      if (c.status === 'wait') c.connect().catch(() => undefined);
    }
    const ready = await waitReady(conn.commands, opts.waitMs);
    // Grants may only be announced to a subscribed process; the poll covers a slow subscribe.
    if (ready) await within(subscribed, opts.waitMs);
    return { link, ready };
  }

  /** Close what this process created (a client passed in by the user stays open). */
  async close(): Promise<void> {
    for (const off of this.detach.splice(0)) off();
    await quit(this.conn.subscriber);
    if (this.conn.ownsCommands) await quit(this.conn.commands);
  }
}

function waitReady(client: RedisClient, ms: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ok);
    };
    const onReady = (): void => done(true);
    const timer = setTimeout(() => done(false), ms);
    client.on('ready', onReady);
  });
}

async function quit(client: RedisClient): Promise<void> {
  if (client.status === 'ready') {
    await within(
      client.quit().catch(() => undefined),
      500,
    );
  }
  // After a clean QUIT the socket is closed; disconnect() would arm a 2 s ioredis timer.
  if (client.status !== 'end') client.disconnect();
}
