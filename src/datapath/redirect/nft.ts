/** Applies, removes and reads the `inet meshaccel` table with the nft binary. */
import type { RedirectConfig } from '../../net/capture-config';
import type { CaptureMode } from './validate';
import { runIn, runRawIn, type NetnsTarget } from './exec';
import { COUNTERS, renderApplyTransaction, renderRemoveTransaction, TABLE_FAMILY, TABLE_NAME, type CounterName, type RenderOptions } from './nft-ruleset';

/** One `nft -f -` transaction: the table is replaced as a whole or not at all. */
export async function applyNftTable(target: NetnsTarget, config: RedirectConfig, mode: CaptureMode, options: RenderOptions = {}): Promise<void> {
  await runIn(target, ['nft', '-f', '-'], renderApplyTransaction(config, mode, options));
}

export async function removeNftTable(target: NetnsTarget): Promise<void> {
  await runIn(target, ['nft', '-f', '-'], renderRemoveTransaction());
}

export interface CounterValue {
  packets: number;
  bytes: number;
}

export interface NftTableState {
  installed: boolean;
  comment?: string;
  counters: Partial<Record<CounterName, CounterValue>>;
  sets: Record<string, string[]>;
  chains: string[];
  rules: number;
}

interface NftJsonObject {
  table?: { name: string; comment?: string };
  counter?: { name: string; packets: number; bytes: number };
  set?: { name: string; elem?: unknown[] };
  chain?: { name: string };
  rule?: unknown;
}

function elemText(e: unknown): string {
  if (typeof e === 'string' || typeof e === 'number') return String(e);
  if (e && typeof e === 'object') {
    const o = e as { prefix?: { addr: string; len: number }; range?: unknown[]; elem?: { val?: unknown } };
    if (o.prefix) return `${o.prefix.addr}/${o.prefix.len}`;
    if (o.range) return o.range.map(elemText).join('-');
    if (o.elem) return elemText(o.elem.val);
  }
  return JSON.stringify(e);
}

export function parseNftTableJson(text: string): NftTableState {
  const doc = JSON.parse(text) as { nftables?: NftJsonObject[] };
  const state: NftTableState = { installed: true, counters: {}, sets: {}, chains: [], rules: 0 };
  for (const o of doc.nftables ?? []) {
    if (o.table) state.comment = o.table.comment;
    else if (o.counter && (COUNTERS as readonly string[]).includes(o.counter.name)) {
      state.counters[o.counter.name as CounterName] = { packets: o.counter.packets, bytes: o.counter.bytes };
    } else if (o.set) state.sets[o.set.name] = (o.set.elem ?? []).map(elemText);
    else if (o.chain) state.chains.push(o.chain.name);
    else if (o.rule) state.rules++;
  }
  return state;
}

export async function readNftTable(target: NetnsTarget): Promise<NftTableState> {
  const result = await runRawIn(target, ['nft', '-j', 'list', 'table', TABLE_FAMILY, TABLE_NAME]);
  if (result.code !== 0) {
    if (/No such file or directory|does not exist/i.test(result.stderr)) return { installed: false, counters: {}, sets: {}, chains: [], rules: 0 };
    throw new Error(`nft -j list table ${TABLE_FAMILY} ${TABLE_NAME} exited ${result.code}: ${result.stderr.trim()}`);
  }
  return parseNftTableJson(result.stdout);
}
