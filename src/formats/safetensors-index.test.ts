// Tests for model.safetensors.index.json: shard names, parsing/validation with field-naming
// errors, and buildIndex's transformers-style output (indent 2, sorted keys, ASCII escapes).
import { describe, it, expect } from 'vitest';
import { buildIndex, parseIndex, shardName } from './safetensors-index.ts';
import { SafetensorsError, parseHeader, writeSafetensors } from './safetensors.ts';

describe('shardName', () => {
  it('follows huggingface_hub: model-{i:05d}-of-{n:05d}.safetensors, i from 1', () => {
    expect(shardName(1, 2)).toBe('model-00001-of-00002.safetensors');
    expect(shardName(2, 2)).toBe('model-00002-of-00002.safetensors');
    expect(shardName(7, 123)).toBe('model-00007-of-00123.safetensors');
    expect(shardName(1, 1, 'adapter')).toBe('adapter-00001-of-00001.safetensors');
    expect(() => shardName(0, 2)).toThrow(RangeError);
    expect(() => shardName(3, 2)).toThrow(RangeError);
    expect(() => shardName(1.5, 2)).toThrow(RangeError);
  });
});

const sample = `{
  "metadata": {
    "total_parameters": 12,
    "total_size": 48
  },
  "weight_map": {
    "lm_head.weight": "model-00002-of-00002.safetensors",
    "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
    "model.norm.weight": "model-00002-of-00002.safetensors"
  }
}
`;

describe('parseIndex', () => {
  it('parses a valid index and lists shards in order', () => {
    const idx = parseIndex(sample);
    expect(idx.totalSize).toBe(48);
    expect(idx.totalParameters).toBe(12);
    expect(idx.shards).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
    expect(idx.weightMap.get('model.norm.weight')).toBe('model-00002-of-00002.safetensors');
    expect(idx.weightMap.size).toBe(3);
    expect(idx.tensorsByShard.get('model-00002-of-00002.safetensors')).toEqual(['lm_head.weight', 'model.norm.weight']);
  });

  it('accepts a missing metadata object and keeps extra metadata fields', () => {
    const a = parseIndex('{"weight_map":{"w":"model-00001-of-00001.safetensors"}}');
    expect(a.totalSize).toBeNull();
    expect(a.metadata).toEqual({});
    const b = parseIndex('{"metadata":{"total_size":4,"format":"pt"},"weight_map":{"w":"x.safetensors"}}');
    expect(b.metadata.format).toBe('pt');
  });

  const bad: Array<[string, string, string]> = [
    ['not JSON', '{"weight_map": ', 'not valid JSON'],
    ['an array', '[]', 'must be a JSON object, got array'],
    ['no weight_map', '{"metadata":{"total_size":1}}', 'missing field "weight_map"'],
    ['weight_map an array', '{"weight_map":["a"]}', 'weight_map must be an object of tensor name → shard file, got array'],
    ['empty weight_map', '{"weight_map":{}}', 'weight_map is empty'],
    ['shard not a string', '{"weight_map":{"w":3}}', 'weight_map["w"] must be a shard file name, got number'],
    ['shard path escaping the folder', '{"weight_map":{"w":"../x.safetensors"}}', 'weight_map["w"] = "../x.safetensors" is not a plain *.safetensors file name'],
    ['shard in a subfolder', '{"weight_map":{"w":"sub/x.safetensors"}}', '"sub/x.safetensors" is not a plain'],
    ['shard not .safetensors', '{"weight_map":{"w":"pytorch_model.bin"}}', '"pytorch_model.bin" is not a plain'],
    ['metadata an array', '{"metadata":[],"weight_map":{"w":"x.safetensors"}}', 'metadata must be an object, got array'],
    ['total_size a string', '{"metadata":{"total_size":"48"},"weight_map":{"w":"x.safetensors"}}', 'metadata.total_size must be a non-negative integer, got string'],
    ['total_size negative', '{"metadata":{"total_size":-1},"weight_map":{"w":"x.safetensors"}}', 'metadata.total_size must be a non-negative integer, got -1'],
    ['total_parameters fractional', '{"metadata":{"total_parameters":1.5},"weight_map":{"w":"x.safetensors"}}', 'metadata.total_parameters must be a non-negative integer, got 1.5'],
    ['duplicate tensor', '{"weight_map":{"w":"a.safetensors","w":"b.safetensors"}}', 'weight_map: duplicate key "w"'],
  ];
  for (const [what, text, message] of bad) {
    it(`rejects ${what}`, () => {
      let err: unknown;
      try {
        parseIndex(text, 'idx.json');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SafetensorsError);
      expect((err as Error).message).toContain(message);
      expect((err as Error).message.startsWith('idx.json: ')).toBe(true);
    });
  }
});

describe('buildIndex', () => {
  const shard1 = parseHeader(writeSafetensors([
    { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [2, 4], data: new Uint8Array(32) },
  ]));
  const shard2 = parseHeader(writeSafetensors([
    { name: 'model.norm.weight', dtype: 'F32', shape: [2], data: new Uint8Array(8) },
    { name: 'lm_head.weight', dtype: 'F16', shape: [2, 1], data: new Uint8Array(4) },
  ]));
  const shards = [
    { file: shardName(1, 2), tensors: shard1.tensors },
    { file: shardName(2, 2), tensors: shard2.tensors },
  ];

  it('writes transformers-style JSON (indent 2, sorted keys, trailing newline)', () => {
    const text = buildIndex(shards, { totalParameters: true });
    expect(text).toBe(sample.replace('"total_size": 48', '"total_size": 44'));
    const back = parseIndex(text);
    expect(back.totalSize).toBe(44);
    expect([...back.weightMap.keys()].sort()).toEqual(['lm_head.weight', 'model.embed_tokens.weight', 'model.norm.weight']);
    const plain = JSON.parse(buildIndex(shards));
    expect(plain.metadata).toEqual({ total_size: 44 });
  });

  it('sorts keys as strings by code point and escapes non-ASCII like Python', () => {
    const text = buildIndex([{ file: 'x.safetensors', tensors: ['9', '10', 'é', '\u{1F600}', 'Z'].map((name) => ({ name, begin: 0, end: 1 })) }]);
    const keys = [...text.slice(text.indexOf('weight_map')).matchAll(/^ {4}"(.*?)":/gm)].map((m) => m[1]);
    expect(keys).toEqual(['10', '9', 'Z', '\\u00e9', '\\ud83d\\ude00']);
    expect(/[^\x00-\x7f]/.test(text)).toBe(false);
    expect([...parseIndex(text).weightMap.keys()]).toContain('\u{1F600}');
  });

  it('rejects a tensor that is in two shards and keeps extra metadata', () => {
    expect(() => buildIndex([shards[0], { file: 'b.safetensors', tensors: shard1.tensors }])).toThrow(
      'tensor "model.embed_tokens.weight" is in both model-00001-of-00002.safetensors and b.safetensors',
    );
    expect(JSON.parse(buildIndex(shards, { metadata: { format: 'pt' } })).metadata).toEqual({ format: 'pt', total_size: 44 });
  });
});
