import { h, setText } from './dom';
import { fmtInt } from './format';
import type { EndpointStats } from './types';

function counter(label: string, field: string, hint: string): HTMLElement {
  return h(
    'div',
    { class: 'counter tone-bad', title: hint },
    h('span', { class: 'counter-label' }, label),
    h('span', { class: 'counter-value', 'data-field': field }, '–'),
  );
}

/**
 * The deadline rejections of one pool, beside the queue timeouts and apart from them (this
 * process's counts): 504s whose deadline passed in the queue, 503s refused at arrival because
 * the predicted wait exceeded the time left. Hidden until the pool has counted one, so pools
 * without deadlines show nothing new.
 */
export class DeadlineCounters {
  readonly els: HTMLElement[];
  private readonly expired = counter(
    '504 deadline',
    'deadline_expired',
    "The request's deadline passed while it waited in the queue (this process)",
  );
  private readonly unreachable = counter(
    '503 deadline unreachable',
    'deadline_unreachable',
    'Refused at arrival: the predicted wait exceeded the time left before the deadline (this process; also in 503 rejected)',
  );

  constructor() {
    this.els = [this.expired, this.unreachable];
  }

  update(e: EndpointStats): void {
    const expired = e.deadline_expired ?? 0;
    const unreachable = e.deadline_unreachable ?? 0;
    const seen = expired + unreachable > 0;
    for (const [el, n] of [
      [this.expired, expired],
      [this.unreachable, unreachable],
    ] as const) {
      el.hidden = !seen;
      el.classList.toggle('nonzero', n > 0);
      setText(el.querySelector('.counter-value') as HTMLElement, fmtInt(n));
    }
  }
}
