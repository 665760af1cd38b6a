import { section } from './core.js';

export const metricsSection = section({});
