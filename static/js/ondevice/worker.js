// The on-device engine in a worker, so the page (video, overlay, controls) never waits for a frame's
// analysis. Messages: {id, op: 'init' | 'load' | 'analyze', args} -> {id, result} | {id, error}.
// Pixels arrive as a transferred ImageData; nothing leaves this worker but the answer to the page.
import { createEngine } from './engine.js';

let engine = null;

self.onmessage = async (event) => {
  const { id, op, args } = event.data;
  try {
    let result;
    if (op === 'init') {
      engine = await createEngine(args);
      result = { settings: engine.settings, info: engine.info };
    } else if (op === 'load') {
      engine.setCards(args.cards);
      await engine.load(args.model);
      result = { info: engine.info };
    } else if (op === 'analyze') {
      result = await engine.analyze(args.pixels, args.options);
      result.info = engine.info;
    } else {
      throw new Error(`unknown operation ${op}`);
    }
    self.postMessage({ id, result });
  } catch (err) {
    self.postMessage({ id, error: { message: (err && err.message) || String(err), reason: err && err.reason } });
  }
};
