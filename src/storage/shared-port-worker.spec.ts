import { sharedPortWorker } from './shared-port-worker';

describe('sharedPortWorker', () => {
  // Jest runs this file in a plain process (not a node:cluster worker).
  it('is null for a process on its own', () => {
    expect(sharedPortWorker({})).toBeNull();
  });

  it('names a PM2 instance (pm_id or NODE_APP_INSTANCE)', () => {
    expect(sharedPortWorker({ pm_id: '3', NODE_APP_INSTANCE: '1', instances: '4' })).toBe(
      'PM2 instance 3',
    );
    expect(sharedPortWorker({ NODE_APP_INSTANCE: '0' })).toBe('PM2 instance 0');
    expect(sharedPortWorker({ pm_id: '0', instances: 'max' })).toBe('PM2 instance 0');
  });

  it('is null for a single PM2 instance', () => {
    expect(sharedPortWorker({ pm_id: '0', NODE_APP_INSTANCE: '0', instances: '1' })).toBeNull();
  });
});
