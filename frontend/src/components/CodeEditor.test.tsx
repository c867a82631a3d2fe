import { fireEvent, render, screen } from '@testing-library/react'
import userEvent from '@testing-library/user-event'
import { useState } from 'react'
import { describe, expect, it } from 'vitest'
import { CodeEditor } from './CodeEditor'

function Harness({ initial }: { initial: string }) {
  const [code, setCode] = useState(initial)
  return <CodeEditor value={code} onChange={setCode} />
}

const editor = () => screen.getByRole<HTMLTextAreaElement>('textbox', { name: 'Code' })

describe('CodeEditor', () => {
  it('is a textbox named "Code" showing the value', () => {
    render(<Harness initial={'print("hi")'} />)
    expect(editor()).toHaveValue('print("hi")')
  })

  it('highlights Python with Prism tokens and escapes the source', () => {
    const { container } = render(<Harness initial={'def f():\n    return "<b>"  # note'} />)
    const pre = container.querySelector('pre')!
    expect(pre.querySelector('.token.keyword')).toHaveTextContent('def')
    expect(pre.querySelector('.token.string')).toHaveTextContent('"<b>"')
    expect(pre.querySelector('.token.comment')).toHaveTextContent('# note')
    expect(pre.querySelector('b')).toBeNull()
  })

  it('numbers every line, including a trailing empty one', () => {
    render(<Harness initial={'a = 1\nb = 2\n'} />)
    expect(screen.getByTestId('line-numbers').textContent).toBe('123')
  })

  it('indents with Tab and dedents with Shift+Tab', async () => {
    const user = userEvent.setup()
    render(<Harness initial={'if x:\npass'} />)
    const el = editor()
    el.focus()
    el.setSelectionRange(6, 6) // start of "pass"
    await user.keyboard('{Tab}')
    expect(el).toHaveValue('if x:\n    pass')
    expect(el).toHaveFocus()
    el.setSelectionRange(10, 10)
    await user.keyboard('{Shift>}{Tab}{/Shift}')
    expect(el).toHaveValue('if x:\npass')
  })

  it('indents every selected line', () => {
    render(<Harness initial={'a\nb\nc'} />)
    const el = editor()
    el.focus()
    el.setSelectionRange(0, 3) // "a\nb"
    fireEvent.keyDown(el, { key: 'Tab' })
    expect(el).toHaveValue('    a\n    b\nc')
  })

  it('lets Escape then Tab move focus out (no keyboard trap)', () => {
    render(<Harness initial={'x'} />)
    const el = editor()
    el.focus()
    fireEvent.keyDown(el, { key: 'Escape' })
    const tab = fireEvent.keyDown(el, { key: 'Tab' })
    expect(tab).toBe(true) // not prevented: the browser moves focus
    expect(el).toHaveValue('x')
  })
})
