import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { BalancerModuleOptions } from '../config/balancer-options';
import { BALANCER_RAW_OPTIONS } from '../config/balancer.constants';

export const {
  ConfigurableModuleClass: BalancerConfigurableModule,
  OPTIONS_TYPE: BALANCER_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: BALANCER_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<BalancerModuleOptions>({
  moduleName: 'Balancer',
  optionsInjectionToken: BALANCER_RAW_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: true }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();
