import { timingSafeEqual, createHash } from 'node:crypto';
import {
  Controller,
  Get,
  Header,
  Headers,
  Inject,
  ServiceUnavailableException,
  UnauthorizedException,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { EXPOSITION_CONTENT_TYPE } from '@wsmon/metrics';
import { bearer } from '../auth/api-key.guard';
import { Public } from '../auth/roles';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { MetricsService } from './metrics.service';

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Prometheus scrapes `/metrics` on the HTTP port, beside `/healthz`: open like it, unless
 * `WSMON_METRICS_TOKEN` is set, when it takes that bearer token (not an API key: a scraper needs no role).
 */
@ApiExcludeController()
@Controller()
export class MetricsController {
  private readonly token: Buffer | undefined;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly metrics: MetricsService,
  ) {
    this.token = config.metricsToken === undefined ? undefined : digest(config.metricsToken);
  }

  @Get('metrics')
  @Public()
  @Header('Content-Type', EXPOSITION_CONTENT_TYPE)
  @Header('Cache-Control', 'no-store')
  async scrape(@Headers('authorization') authorization: string | undefined): Promise<string> {
    if (this.token) {
      const given = bearer(authorization);
      // Digests of equal length: the comparison takes the same time whatever was sent.
      if (given === undefined || !timingSafeEqual(digest(given), this.token)) {
        throw new UnauthorizedException('/metrics needs the bearer token WSMON_METRICS_TOKEN');
      }
    }
    try {
      return await this.metrics.exposition();
    } catch (error) {
      throw new ServiceUnavailableException(`metrics unavailable: ${(error as Error).message}`);
    }
  }
}
