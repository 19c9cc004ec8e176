import { PLATFORMS, startApp, type PlatformName, type RunningApp } from '../harness/platforms';
import { LocalStartLog, overloadAppModule } from './overload-app';
import { TARGET_MS, TARGET_QUEUE_TIMEOUT_S } from './properties';

export { PLATFORMS };

/** The overload app on the memory store, listening on `platform`. */
export function startMemoryApp(platform: PlatformName): Promise<RunningApp> {
  return startApp(
    platform,
    overloadAppModule(
      { targetMs: TARGET_MS, targetQueueTimeoutS: TARGET_QUEUE_TIMEOUT_S, policies: 'decorator' },
      new LocalStartLog(),
      {},
    ),
  );
}
