import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { RedisServer } from './redis';

const run = promisify(execFile);

/**
 * A real Redis Cluster of `masters` masters (no replicas), each a redis-server on its own free
 * port, joined with `redis-cli --cluster create`: slots are spread over the nodes, so keys of
 * different pools live on different nodes and pub/sub crosses the cluster bus.
 */
export class RedisCluster {
  private constructor(readonly nodes: RedisServer[]) {}

  static async start(masters = 3): Promise<RedisCluster> {
    const nodes = await Promise.all(
      Array.from({ length: masters }, () => RedisServer.start({ cluster: 'node' })),
    );
    const cluster = new RedisCluster(nodes);
    try {
      await run(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...nodes.map((n) => `127.0.0.1:${n.port}`),
          '--cluster-replicas',
          '0',
          '--cluster-yes',
        ],
        { timeout: 30_000 },
      );
      await cluster.waitOk();
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** `{ host, port }` of every node (ioredis Cluster seeds). */
  get seeds(): Array<{ host: string; port: number }> {
    return this.nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));
  }

  /** The port of the master serving `key` (by CLUSTER KEYSLOT and CLUSTER SLOTS). */
  async ownerPort(key: string): Promise<number> {
    const client = new Redis(this.nodes[0].url, { disconnectTimeout: 20 });
    try {
      const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
      const ranges = (await client.call('CLUSTER', 'SLOTS')) as Array<
        [number, number, [string, number]]
      >;
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to);
      if (!owner) throw new Error(`no node serves slot ${slot}`);
      return Number(owner[2][1]);
    } finally {
      client.disconnect();
    }
  }

  private async waitOk(): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (const node of this.nodes) {
      const client = new Redis(node.url, { disconnectTimeout: 20 });
      try {
        while (!String(await client.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) {
          if (Date.now() > deadline) throw new Error(`cluster node ${node.port} did not become ok`);
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        client.disconnect();
      }
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
