// Fails when src/api/schema.d.ts no longer matches the committed snapshot openapi.json
// (fix: `npm run gen:api`; refresh the snapshot from a running API with `npm run fetch:api`).
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

describe('OpenAPI types', () => {
  it('are up to date with the openapi.json snapshot', () => {
    const cli = resolve(root, 'node_modules/openapi-typescript/bin/cli.js')
    try {
      execFileSync(process.execPath, [cli, 'openapi.json', '-o', 'src/api/schema.d.ts', '--check'], { cwd: root, stdio: 'pipe' })
    } catch (error) {
      const e = error as { stdout?: Buffer; stderr?: Buffer }
      const output = `${e.stdout?.toString() ?? ''}${e.stderr?.toString() ?? ''}`
      expect.fail(`src/api/schema.d.ts is stale: run \`npm run gen:api\`\n${output}`)
    }
  }, 30_000)

  it('describe the execution document the UI relies on', () => {
    const spec = JSON.parse(readFileSync(resolve(root, 'openapi.json'), 'utf8')) as {
      components: { schemas: Record<string, { properties?: Record<string, unknown>; enum?: string[] }> }
      paths: Record<string, unknown>
    }
    const schemas = spec.components.schemas
    const execution = Object.values(schemas).find((s) => s.properties && 'stdout_truncated' in s.properties && 'backend' in s.properties)
    expect(execution, 'an execution document schema').toBeDefined()
    for (const field of ['id', 'status', 'created_at', 'started_at', 'finished_at', 'duration_ms', 'exit_code', 'stdout', 'stderr', 'stdout_truncated', 'stderr_truncated', 'error', 'limits', 'backend']) {
      expect(execution!.properties).toHaveProperty(field)
    }
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/v1/executions', '/v1/executions/{execution_id}']))
  })
})
