// WCAG AA: every text colour of the palette (src/index.css @theme) against every surface it is drawn on.
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const css = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), 'index.css'), 'utf8')
const palette = Object.fromEntries([...css.matchAll(/--color-([\w-]+):\s*(#[0-9a-f]{6})/gi)].map((m) => [m[1]!, m[2]!]))

function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
  })
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!
}

export function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x)
  return (hi! + 0.05) / (lo! + 0.05)
}

describe('palette contrast', () => {
  const surfaces = ['void', 'panel', 'panel-2']
  const texts = ['ink', 'muted', 'cyan', 'magenta', 'lime', 'amber', 'danger', 'comment']

  it('defines every colour it is tested with', () => {
    for (const name of [...surfaces, ...texts]) expect(palette[name], name).toMatch(/^#/)
  })

  for (const text of texts) {
    for (const surface of surfaces) {
      it(`${text} on ${surface} is at least 4.5:1`, () => {
        expect(contrast(palette[text]!, palette[surface]!)).toBeGreaterThanOrEqual(4.5)
      })
    }
  }

  it('the Run button (void on lime) is at least 4.5:1', () => {
    expect(contrast(palette.void!, palette.lime!)).toBeGreaterThanOrEqual(4.5)
  })
})
