import axios, { type AxiosAdapter, type InternalAxiosRequestConfig } from 'axios'
import { describe, expect, it } from 'vitest'
import { doc } from '../test/fakes'
import { createApiClient, isTerminal, TERMINAL_STATUSES } from './client'

function recordingHttp(data: unknown = doc()) {
  const seen: InternalAxiosRequestConfig[] = []
  const adapter: AxiosAdapter = async (config) => {
    seen.push(config)
    return { data, status: 200, statusText: 'OK', headers: {}, config }
  }
  return { http: axios.create({ adapter }), seen }
}

describe('createApiClient', () => {
  it('calls the API with relative /v1 URLs', async () => {
    const { http, seen } = recordingHttp()
    const client = createApiClient(() => null, http)
    await client.createExecution({ code: 'print(1)', stdin: '', runtime: 'python', limits: { timeout_seconds: 5, memory_mb: 128 } })
    await client.getExecution('a/b')
    await client.listExecutions()
    await client.cancelExecution('abc')
    expect(seen.map((c) => `${c.method} ${c.url}`)).toEqual([
      'post /v1/executions',
      'get /v1/executions/a%2Fb',
      'get /v1/executions',
      'delete /v1/executions/abc',
    ])
    expect(seen[2]!.params).toEqual({ limit: 20 })
    expect(JSON.parse(seen[0]!.data as string)).toEqual({ code: 'print(1)', stdin: '', runtime: 'python', limits: { timeout_seconds: 5, memory_mb: 128 } })
  })

  it('sends Authorization: Bearer only when a key is set, reading it on every request', async () => {
    const { http, seen } = recordingHttp()
    let key: string | null = null
    const client = createApiClient(() => key, http)
    await client.getExecution('x')
    key = '  s3cret '
    await client.getExecution('x')
    expect(seen[0]!.headers.get('Authorization')).toBeUndefined()
    expect(seen[1]!.headers.get('Authorization')).toBe('Bearer s3cret')
  })
})

describe('runtimes and artifacts', () => {
  it('lists the runtimes', async () => {
    const { http, seen } = recordingHttp([{ name: 'python', python_version: '3.11', packages: [] }])
    expect(await createApiClient(() => null, http).listRuntimes()).toEqual([{ name: 'python', python_version: '3.11', packages: [] }])
    expect(seen.map((c) => `${c.method} ${c.url}`)).toEqual(['get /v1/runtimes'])
  })

  it('fetches an artifact as a blob, with the key, each segment of its path encoded', async () => {
    const { http, seen } = recordingHttp(new Blob(['png']))
    const blob = await createApiClient(() => 'k', http).getArtifact('e/1', 'sub dir/plot #1.png')
    expect(blob).toBeInstanceOf(Blob)
    expect(seen[0]!.url).toBe('/v1/executions/e%2F1/artifacts/sub%20dir/plot%20%231.png')
    expect(seen[0]!.responseType).toBe('blob')
    expect(seen[0]!.headers.get('Authorization')).toBe('Bearer k')
  })
})

describe('isTerminal', () => {
  it('knows the six terminal states', () => {
    expect(TERMINAL_STATUSES).toHaveLength(6)
    expect(isTerminal('queued')).toBe(false)
    expect(isTerminal('running')).toBe(false)
    expect(isTerminal('timed_out')).toBe(true)
  })
})
