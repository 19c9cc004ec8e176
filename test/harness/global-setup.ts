// Jest global setup. The Redis harness (test/harness/redis.ts) adds its server here.
export default async function globalSetup(): Promise<void> {}
