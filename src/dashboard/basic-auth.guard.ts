import {
  CanActivate,
  ExecutionContext,
  Inject,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { BALANCER_OPTIONS } from '../config/balancer.constants';
import type { ResolvedBalancerOptions } from '../config/resolve-options';
import { BASIC_CHALLENGE, checkBasicAuth } from './basic-auth';

/** Basic auth on the balancer's own routes when `ui.username`/`ui.password` are set. */
@Injectable()
export class BalancerAuthGuard implements CanActivate {
  constructor(@Inject(BALANCER_OPTIONS) private readonly options: ResolvedBalancerOptions) {}

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const req = http.getRequest<{ headers: Record<string, string | undefined> }>();
    if (checkBasicAuth(req.headers.authorization, this.options.ui)) return true;
    const reply = http.getResponse<ServerResponse | { raw: ServerResponse }>();
    const raw = 'raw' in reply ? reply.raw : reply;
    raw.setHeader('WWW-Authenticate', BASIC_CHALLENGE);
    throw new UnauthorizedException('Credentials required for the balancer dashboard and stats');
  }
}
