import { authRequired, checkBasicAuth } from './basic-auth';

const creds = { username: 'jürgen', password: 'pä:ss ✓' };
const header = (s: string, enc: BufferEncoding = 'utf8') =>
  'Basic ' + Buffer.from(s, enc).toString('base64');

describe('checkBasicAuth', () => {
  it('lets everything through when no credentials are configured', () => {
    expect(authRequired({})).toBe(false);
    expect(checkBasicAuth(undefined, {})).toBe(true);
  });

  it('accepts the UTF-8 credentials, with a colon in the password', () => {
    expect(checkBasicAuth(header('jürgen:pä:ss ✓'), creds)).toBe(true);
    expect(checkBasicAuth(header('jürgen:pä:ss ✓').replace('Basic', 'basic'), creds)).toBe(true);
  });

  it.each([
    ['missing', undefined],
    ['not a string', ['Basic x']],
    ['empty', ''],
    ['scheme only', 'Basic'],
    ['other scheme', 'Bearer abc'],
    ['not base64', 'Basic ***'],
    ['no colon', header('jürgen')],
    ['wrong password', header('jürgen:nope')],
    ['wrong user', header('jurgen:pä:ss ✓')],
    ['latin1-encoded', header('jürgen:pä:ss ✓', 'latin1')],
    ['two credentials', `${header('jürgen:pä:ss ✓')}, ${header('jürgen:pä:ss ✓')}`],
    ['non-ASCII header', 'Basic \u00fc\u00e9'],
  ])('refuses %s without throwing', (_name, value) => {
    expect(checkBasicAuth(value, creds)).toBe(false);
  });
});
