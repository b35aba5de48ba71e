// GET /api/v1/links/{code}/qr — the short URL as a QR code, SVG or PNG, for printing and sharing.
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.ts';
import { HopError } from '../domain/errors.ts';
import { AUTHENTICATED, problemResponses } from '../http/openapi.ts';
import { findLink } from './find-link.ts';
import { codeParamsSchema, domainQuerySchema } from './link-view.ts';

// The QR encoder (several MB in memory) is loaded by the first QR code asked for, not at boot.
let encoder: Promise<typeof import('qrcode')> | null = null;
const qrcode = () => {
  encoder ??= import('qrcode');
  return encoder;
};

interface QrQuery {
  format?: 'svg' | 'png';
  size?: string;
  download?: 'true' | 'false';
  domain?: string;
}

const DEFAULT_SIZE = 256;

export function registerLinkQr(app: FastifyInstance, deps: Deps): void {
  app.get<{ Params: { code: string }; Querystring: QrQuery }>(
    '/links/:code/qr',
    {
      schema: {
        summary: "The link's short URL as a QR code",
        operationId: 'getLinkQr',
        tags: ['links'],
        params: codeParamsSchema,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            format: { type: 'string', enum: ['svg', 'png'], default: 'svg' },
            size: {
              type: 'string',
              pattern: '^[0-9]{2,4}$',
              description: 'Pixels, 64 to 2048 (default 256)',
            },
            download: { type: 'string', enum: ['true', 'false'], description: 'Answer as an attachment' },
            ...domainQuerySchema.properties,
          },
        },
        response: {
          200: {
            description: 'The QR code, SVG (the default) or PNG',
            content: {
              'image/svg+xml': { schema: { type: 'string' } },
              'image/png': { schema: { type: 'string', contentMediaType: 'image/png' } },
            },
          },
          ...problemResponses(...AUTHENTICATED, 'validation_failed', 'not_found', 'unknown_domain'),
        },
      },
    },
    async (req, reply) => {
      const size = req.query.size === undefined ? DEFAULT_SIZE : Number(req.query.size);
      if (size < 64 || size > 2048) {
        throw new HopError('validation_failed', 'size must be from 64 to 2048 pixels.', {
          extra: { field: 'size' },
        });
      }
      const link = await findLink(deps, req.params.code, req.query.domain);
      const text = deps.domains.shortUrl(link.domain, link.code);
      const format = req.query.format ?? 'svg';
      // The code never changes what it encodes, so a browser may keep the picture a while.
      reply.header('cache-control', 'private, max-age=3600');
      if (req.query.download === 'true') {
        reply.header('content-disposition', `attachment; filename="${link.code}.${format}"`);
      }
      if (format === 'png') {
        const png = await (await qrcode()).toBuffer(text, { type: 'png', width: size, margin: 2 });
        return reply.type('image/png').send(png);
      }
      const svg = await (await qrcode()).toString(text, { type: 'svg', width: size, margin: 2 });
      return reply
        .type('image/svg+xml; charset=utf-8')
        .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
        .send(svg);
    },
  );
}
