import { EventEmitter } from 'node:events';
import type { ChangeWakeup, EventBus } from '../../ports/event-bus.js';

/** In-process wake-ups: enough for one server or one library instance. */
export function createLocalEventBus(): EventBus {
  const emitter = new EventEmitter();
  // One listener per open SSE stream: thousands are normal, not a leak.
  emitter.setMaxListeners(0);
  return {
    name: 'local',
    publish: (wakeup) => void emitter.emit('change', wakeup),
    subscribe: (listener: (wakeup: ChangeWakeup) => void) => {
      emitter.on('change', listener);
      return () => void emitter.off('change', listener);
    },
    close: async () => void emitter.removeAllListeners(),
  };
}
