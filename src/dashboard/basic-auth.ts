import { createHash, timingSafeEqual } from 'node:crypto';

export interface BasicCredentials {
  username?: string;
  password?: string;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** The `WWW-Authenticate` value sent with every 401. */
export const BASIC_CHALLENGE = 'Basic realm="nestjs-balancer", charset="UTF-8"';

/** True when auth is configured. */
export function authRequired(creds: BasicCredentials): boolean {
  return Boolean(creds.username && creds.password);
}

/**
 * Check an `Authorization` header against the configured credentials. Compares digests with
 * `timingSafeEqual` (equal lengths, no early exit); anything malformed is simply "no"
 * (never a throw, so never a 500), and UTF-8 credentials work.
 */
export function checkBasicAuth(header: unknown, creds: BasicCredentials): boolean {
  if (!authRequired(creds)) return true;
  if (typeof header !== 'string') return false;
  const match = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!match) return false;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  const userOk = timingSafeEqual(digest(decoded.slice(0, colon)), digest(creds.username as string));
  const passOk = timingSafeEqual(
    digest(decoded.slice(colon + 1)),
    digest(creds.password as string),
  );
  return userOk && passOk;
}
