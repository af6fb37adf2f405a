/** The standalone validator records-codegen.ts writes at build time (records-validate.js). */
import type { ErrorObject } from 'ajv';

/** Validate `{ "proxy.config.x": value }` against the records schema; errors in `validate.errors`. */
export declare const validate: {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
};
