import { section } from './core.js';

export const lifecycleSection = section({});
