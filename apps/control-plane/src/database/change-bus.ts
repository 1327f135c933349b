import { EventEmitter } from 'node:events';
import { Logger } from '@nestjs/common';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';

/**
 * What changed, for the replicas that care:
 * - `wsmon_config`: tests or secrets changed (payload: the new configuration revision);
 * - `wsmon_agents`: an agent of a location connected, disconnected or drained (payload: location id);
 * - `wsmon_run`: an on-demand run was created (payload: run id).
 */
export const CHANGE_CHANNELS = ['wsmon_config', 'wsmon_agents', 'wsmon_run'] as const;
export type ChangeChannel = (typeof CHANGE_CHANNELS)[number];

/** Sent to every subscriber after the listening connection was re-established: notifications may have been missed. */
export const RESYNC = '*';

/**
 * Tells every control-plane replica about a committed change. On PostgreSQL it is LISTEN/NOTIFY
 * (replicas share the database, so no extra broker); the embedded database has one replica only,
 * so there it stays in the process. Publish after the change committed; subscribers re-read the
 * database, so a payload is a hint, never the data.
 */
export abstract class ChangeBus {
  abstract publish(channel: ChangeChannel, payload: string): Promise<void>;
  /** Returns the unsubscribe function. The handler also receives RESYNC. */
  abstract subscribe(channel: ChangeChannel, handler: (payload: string) => void): () => void;
  abstract close(): Promise<void>;
}

class Subscribers {
  private readonly emitter = new EventEmitter().setMaxListeners(0);
  private readonly logger = new Logger('change-bus');

  emit(channel: ChangeChannel, payload: string): void {
    for (const handler of this.emitter.listeners(channel) as ((payload: string) => void)[]) {
      try {
        handler(payload);
      } catch (error) {
        this.logger.error(`a ${channel} subscriber failed: ${String(error)}`);
      }
    }
  }

  add(channel: ChangeChannel, handler: (payload: string) => void): () => void {
    this.emitter.on(channel, handler);
    return () => this.emitter.off(channel, handler);
  }
}

/** The embedded database's bus: one process, so an event emitter. */
export class LocalChangeBus extends ChangeBus {
  private readonly subscribers = new Subscribers();

  publish(channel: ChangeChannel, payload: string): Promise<void> {
    // Asynchronous like NOTIFY: a publisher never runs subscribers inside its own call.
    setImmediate(() => this.subscribers.emit(channel, payload));
    return Promise.resolve();
  }

  subscribe(channel: ChangeChannel, handler: (payload: string) => void): () => void {
    return this.subscribers.add(channel, handler);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** LISTEN on a dedicated connection (a pooled one would be handed to other queries); NOTIFY through the pool. */
export class PgChangeBus extends ChangeBus {
  private readonly logger = new Logger('change-bus');
  private readonly subscribers = new Subscribers();
  private client: Client | undefined;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly url: string,
    private readonly dataSource: DataSource,
  ) {
    super();
  }

  static async start(url: string, dataSource: DataSource): Promise<PgChangeBus> {
    const bus = new PgChangeBus(url, dataSource);
    await bus.listen();
    return bus;
  }

  async publish(channel: ChangeChannel, payload: string): Promise<void> {
    await this.dataSource.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  subscribe(channel: ChangeChannel, handler: (payload: string) => void): () => void {
    return this.subscribers.add(channel, handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.client?.end().catch(() => undefined);
  }

  private async listen(): Promise<void> {
    const client = new Client({ connectionString: this.url, keepAlive: true });
    client.on('notification', (message) => {
      if ((CHANGE_CHANNELS as readonly string[]).includes(message.channel)) {
        this.subscribers.emit(message.channel as ChangeChannel, message.payload ?? '');
      }
    });
    client.on('error', (error) => {
      this.logger.warn(`listening connection lost (${error.message}): reconnecting`);
      this.reconnectLater(client);
    });
    client.on('end', () => this.reconnectLater(client));
    await client.connect();
    await client.query(CHANGE_CHANNELS.map((channel) => `LISTEN ${channel}`).join('; '));
    this.client = client;
  }

  private reconnectLater(failed: Client, delayMs = 1000): void {
    if (this.closed || this.client !== failed) return;
    this.client = undefined;
    void failed.end().catch(() => undefined);
    this.retryTimer = setTimeout(() => {
      this.listen().then(
        () => {
          // Whatever was published while nobody listened is lost: subscribers re-read everything.
          for (const channel of CHANGE_CHANNELS) this.subscribers.emit(channel, RESYNC);
        },
        (error: unknown) => {
          this.logger.warn(`cannot listen yet (${String(error)}): retrying`);
          this.client = failed;
          this.reconnectLater(failed, Math.min(delayMs * 2, 10_000));
        },
      );
    }, delayMs);
    this.retryTimer.unref();
  }
}
