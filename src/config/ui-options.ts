import 'reflect-metadata';
import { IsBoolean, IsInt, IsOptional, IsString, Matches, Max, Min } from 'class-validator';

/** The dashboard (`ui`). */
export class UiOptions {
  /** Serve the dashboard. @default true */
  @IsOptional()
  @IsBoolean()
  enable?: boolean;

  /** Where the dashboard is mounted. @default '/balancer/ui' */
  @IsOptional()
  @IsString()
  @Matches(/^\/[^\s?#]*$/, { message: '$property must be an absolute path such as /balancer/ui' })
  path?: string;

  /** Basic-auth user for the dashboard, `/balancer/stats` and `/balancer/metrics`. */
  @IsOptional()
  @IsString()
  username?: string;

  /** Basic-auth password. Set both `username` and `password` or neither. */
  @IsOptional()
  @IsString()
  password?: string;

  /** Seconds of per-second samples the server keeps for the charts. @default 300 */
  @IsOptional()
  @IsInt()
  @Min(60)
  @Max(86400)
  historySeconds?: number;
}
