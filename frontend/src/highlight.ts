// Prism core + the Python grammar only (the default prismjs entry would pull in markup, CSS and JS too).
import Prism from 'prismjs/components/prism-core'
import 'prismjs/components/prism-python'

// Never let Prism scan the document on its own: the editor highlights explicitly.
Prism.manual = true

/** Returns HTML (Prism escapes the source) for Python code. */
export function highlightPython(code: string): string {
  const grammar = Prism.languages.python
  return grammar ? Prism.highlight(code, grammar, 'python') : escapeHtml(code)
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
