// Kubernetes reads YAML with Go's parser, which takes `[1.2.3.4, 2001:db8::]` as two strings;
// YAML 1.2 (and the `yaml` package) reads `2001:db8::` in a flow sequence as a one-pair map
// `{ "2001:db8:": null }`, because a colon before `,` or `]` starts a value there. meshpilot
// must read what users wrote for Istio as Istio does, so such a pair becomes the string again.
import type { Document } from 'yaml';
import { Scalar, isMap, isScalar, visit } from 'yaml';

/** Turns each `word:` that YAML 1.2 made a one-pair map in a flow sequence back into the plain string Go reads. */
export function readFlowColonsAsGo(document: Document, text: string): void {
  visit(document, {
    Seq(_, seq) {
      if (!seq.flow) return;
      seq.items = seq.items.map((item) => {
        if (!isMap(item) || item.items.length !== 1) return item;
        const [pair] = item.items;
        const key = pair?.key;
        const empty = pair?.value === null || (isScalar(pair?.value) && pair.value.value === null && pair.value.source === '');
        if (!pair || !empty || !isScalar(key) || key.type !== Scalar.PLAIN || !key.range) return item;
        const end = key.range[1];
        // Only a colon written right against `,` or `]`: with a space after it, Go reads a map too.
        if (text[end] !== ':' || (text[end + 1] !== ',' && text[end + 1] !== ']')) return item;
        const scalar = new Scalar(`${String(key.value)}:`);
        scalar.range = [key.range[0], end + 1, end + 1];
        return scalar;
      });
    },
  });
}
