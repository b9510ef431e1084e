// loadServices() names the missing service and the command that brings it up.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hostPort, loadServices, servicesFile } from './services.js';

describe('loadServices', () => {
  it('throws naming the command for a missing service', () => {
    if (!existsSync(servicesFile)) {
      expect(() => loadServices('kafka')).toThrow(/run scripts\/services\.sh up kafka/);
      return;
    }
    const present = loadServices();
    const missing = (['kafka', 'clickhouse', 'postfix', 'sendmail'] as const).filter((s) => !present[s]);
    if (missing.length > 0) {
      expect(() => loadServices(...missing)).toThrow(`run scripts/services.sh up ${missing.join(' ')}`);
    } else {
      expect(() => loadServices('kafka', 'postfix')).not.toThrow();
    }
  });

  it('splits host:port', () => {
    expect(hostPort('127.0.0.1:2525')).toEqual({ host: '127.0.0.1', port: 2525 });
  });
});
