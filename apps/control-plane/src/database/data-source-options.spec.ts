import { startTestPostgres, type TestPostgres } from '@wsmon/testing';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataSourceOptions } from './data-source-options';

describe('dataSourceOptions on PostgreSQL', () => {
  let pg: TestPostgres;
  let dataSource: DataSource;

  beforeAll(async () => {
    pg = await startTestPostgres();
    dataSource = new DataSource(dataSourceOptions(await pg.createDatabase(), false));
    await dataSource.initialize();
  }, 60_000);

  afterAll(async () => {
    await dataSource?.destroy();
    await pg?.stop();
  });

  it('runs every session of the pool without JIT, the first one (opened at start) included', async () => {
    // Held at once, so that the pool must open connections beside the one it opened at start.
    const runners = Array.from({ length: 4 }, () => dataSource.createQueryRunner());
    try {
      const settings = await Promise.all(
        runners.map(async (runner) => {
          const [row] = (await runner.query('SELECT current_setting($1) AS jit, pg_backend_pid() AS pid', [
            'jit',
          ])) as { jit: string; pid: number }[];
          return row!;
        }),
      );
      expect(new Set(settings.map((s) => s.pid)).size).toBe(4);
      expect(settings.map((s) => s.jit)).toEqual(['off', 'off', 'off', 'off']);
      // The server's own default is on: the setting is the session's.
      const [server] = await dataSource.query<{ boot_val: string }[]>(
        `SELECT boot_val FROM pg_settings WHERE name = 'jit'`,
      );
      expect(server!.boot_val).toBe('on');
    } finally {
      await Promise.all(runners.map((runner) => runner.release()));
    }
  });
});
