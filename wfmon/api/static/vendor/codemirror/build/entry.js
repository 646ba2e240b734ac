// wfmon's CodeMirror 6 bundle: one global, window.WfmonCodeMirror.
import { basicSetup, EditorView } from "codemirror";
import { javascript } from "@codemirror/lang-javascript";

/** An editor for TypeScript code in `parent`; `onChange(text)` after each edit. */
export function createEditor(parent, doc, onChange, label) {
  return new EditorView({
    parent,
    doc,
    extensions: [
      basicSetup,
      javascript({ typescript: true }),
      EditorView.contentAttributes.of({ "aria-label": label || "Code" }),
      EditorView.updateListener.of((u) => { if (u.docChanged && onChange) onChange(u.state.doc.toString()); }),
    ],
  });
}
export { EditorView };
