import { loadPromClient } from './prom-client.loader';

describe('loadPromClient', () => {
  it('loads the installed prom-client', () => {
    expect(typeof loadPromClient()?.Registry).toBe('function');
  });

  it('returns null when prom-client is not installed', () => {
    const missing = (id: string) => {
      const err = new Error(`Cannot find module '${id}'`) as NodeJS.ErrnoException;
      err.code = 'MODULE_NOT_FOUND';
      throw err;
    };
    expect(loadPromClient(missing)).toBeNull();
  });

  it('does not hide other load failures', () => {
    const broken = () => {
      throw new SyntaxError('Unexpected token');
    };
    expect(() => loadPromClient(broken)).toThrow(SyntaxError);
  });
});
