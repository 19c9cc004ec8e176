import type { IncomingMessage } from 'node:http';
import { acceptsPings } from './early-admission';

const req = (userAgent: string | undefined, httpVersion = '1.1'): IncomingMessage =>
  ({
    httpVersion,
    headers: userAgent === undefined ? {} : { 'user-agent': userAgent },
  }) as IncomingMessage;

describe('waitingPings: which waiting uploads get interim 100 Continue', () => {
  it("'auto': clients that skip 1xx answers, not undici (Node's fetch) nor a client without User-Agent", () => {
    for (const agent of ['curl/8.5.0', 'python-requests/2.31', 'Go-http-client/1.1', 'axios/1.7'])
      expect(acceptsPings(req(agent), 'auto')).toBe(true);
    for (const agent of ['node', 'undici', 'Node', 'undici/6.21.0', undefined, ''])
      expect(acceptsPings(req(agent), 'auto')).toBe(false);
    // A name that merely starts with the same letters is another client.
    expect(acceptsPings(req('nodejs-custom-client'), 'auto')).toBe(true);
  });

  it("'always' and 'never' override the User-Agent; HTTP/1.0 never gets one", () => {
    expect(acceptsPings(req('node'), 'always')).toBe(true);
    expect(acceptsPings(req(undefined), 'always')).toBe(true);
    expect(acceptsPings(req('curl/8.5.0'), 'never')).toBe(false);
    expect(acceptsPings(req('curl/8.5.0', '1.0'), 'always')).toBe(false);
  });
});
