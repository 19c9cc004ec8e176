import { h, replace, setText } from './dom';
import { fmtInt, fmtMs } from './format';
import type { EndpointStats, TenantCount } from './types';

/**
 * The overload policies of one pool: whether the queue is being shed (`queueTargetMs`) with the
 * observed drain interval, and the top tenants by queued and by admitted requests. Hidden for a
 * pool that uses neither policy (the stats carry neither `overload` nor `tenants`).
 *
 * Tenant keys are request text (a header or the app's function): every one of them reaches the
 * page through `h()`/`setText`, i.e. as a text node or an attribute value, never as markup.
 */
export class OverloadPanel {
  readonly el: HTMLElement;
  private readonly shedding: HTMLElement;
  private readonly drain: HTMLElement;
  private readonly tenants: HTMLElement;
  private readonly queuedBody: HTMLElement;
  private readonly admittedBody: HTMLElement;
  private tenantsKey = '';

  constructor() {
    this.shedding = h('span', { class: 'pill', 'data-field': 'shedding' });
    this.drain = h('span', { class: 'overload-drain', 'data-field': 'drain' });
    this.queuedBody = h('tbody');
    this.admittedBody = h('tbody');
    this.tenants = h(
      'div',
      { class: 'tenant-tables', 'data-section': 'tenants' },
      tenantTable('Queued', 'tenants-queued', this.queuedBody),
      tenantTable('Admitted', 'tenants-admitted', this.admittedBody),
    );
    this.el = h(
      'section',
      { class: 'overload', 'data-section': 'overload', hidden: '' },
      h(
        'div',
        { class: 'section-head' },
        h('span', { class: 'section-title' }, 'Overload'),
        h('span', { class: 'overload-state' }, this.shedding, this.drain),
      ),
      this.tenants,
    );
  }

  update(e: EndpointStats): void {
    this.el.hidden = !e.overload && !e.tenants;
    if (this.el.hidden) return;

    const o = e.overload;
    this.shedding.className = `pill ${o ? (o.shedding ? 'pill-bad' : 'pill-ok') : 'pill-neutral'}`;
    setText(this.shedding, o ? (o.shedding ? 'Shedding' : 'Not shedding') : 'No queue target');
    this.shedding.title = o
      ? o.shedding
        ? 'The queue is standing: requests that would wait past queueTargetMs get 503 at once'
        : 'Requests granted from the queue waited less than queueTargetMs (or only briefly longer)'
      : 'queueTargetMs is not set for this pool: nothing is shed';
    setText(
      this.drain,
      o && o.drain_ms !== null ? `one grant every ${fmtMs(o.drain_ms)} from the queue` : '',
    );

    this.tenants.hidden = !e.tenants;
    if (!e.tenants) return;
    const key = JSON.stringify(e.tenants);
    if (key === this.tenantsKey) return;
    this.tenantsKey = key;
    replace(this.queuedBody, ...tenantRows(e.tenants.queued, 'none waiting'));
    replace(this.admittedBody, ...tenantRows(e.tenants.admitted, 'none yet'));
  }
}

function tenantTable(title: string, name: string, body: HTMLElement): HTMLElement {
  return h(
    'table',
    { class: 'levels tenants', 'data-table': name },
    h('thead', null, h('tr', null, h('th', null, 'Tenant'), h('th', { class: 'num' }, title))),
    body,
  );
}

function tenantRows(list: TenantCount[], empty: string): HTMLElement[] {
  if (list.length === 0) {
    return [h('tr', null, h('td', { class: 'muted', colspan: '2' }, empty))];
  }
  return list.map((t) =>
    h(
      'tr',
      null,
      // Text node and attribute value only: the key is shown exactly as sent, never parsed.
      h('td', { class: 'tenant', 'data-field': 'tenant', title: t.tenant }, t.tenant),
      h('td', { class: 'num', 'data-field': 'tenant-count' }, fmtInt(t.count)),
    ),
  );
}
