"""Variants of the rendered Switchyard bootstrap, each without one piece (see README.md)."""
import yaml, json, copy
b = yaml.safe_load(open('r/envoy.yaml'))
def hcm(x): return x['static_resources']['listeners'][0]['filter_chains'][0]['filters'][0]['typed_config']
def grp(x): return [c for c in x['static_resources']['clusters'] if c['name'].startswith('group_')][0]
def up_filters(x): return grp(x)['typed_extension_protocol_options']['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']['http_filters']
out = {}
out['full'] = b
# no upstream wasm (gateway only)
v = copy.deepcopy(b); del up_filters(v)[0]; out['gw_only'] = v
# no wasm at all: route straight to the group cluster, retry policy kept
v = copy.deepcopy(b); del up_filters(v)[0]; hf = hcm(v)['http_filters']; del hf[0]
r = hcm(v)['route_config']['virtual_hosts'][0]['routes'][1]['route']; del r['cluster_header']; r['cluster'] = grp(v)['name']; out['no_wasm_retry'] = v
# no wasm and no retry policy
v = copy.deepcopy(out['no_wasm_retry']); r = hcm(v)['route_config']['virtual_hosts'][0]['routes'][1]['route']; del r['retry_policy']; out['no_wasm_no_retry'] = v
for k, v in out.items(): json.dump(v, open(f'{k}.json', 'w'))
print(list(out))

def minimal_filter(mode):
    """The gateway's filter definition, pointing at the minimal filter in `mode`."""
    f = copy.deepcopy(hcm(b)['http_filters'][0])
    f['typed_config']['config']['configuration']['value'] = mode
    f['typed_config']['config']['vm_config']['code']['local']['filename'] = 'minimal-filter/target/wasm32-wasip1/release/minimal_filter.wasm'
    f['typed_config']['config']['vm_config']['vm_id'] = 'minf'
    return f

# minimal filters in the gateway position, no upstream wasm, route to group
for mode in ['noop', 'pause', 'calls', 'allhdrs']:
    v = copy.deepcopy(out['no_wasm_retry'])
    hcm(v)['http_filters'].insert(0, minimal_filter(mode))
    json.dump(v, open(f'min_{mode}.json', 'w'))
# our gateway, and a minimal filter in the upstream position
for mode in ['noop', 'pause', 'meta', 'resp']:
    v = copy.deepcopy(out['gw_only'])
    up_filters(v).insert(0, minimal_filter(mode))
    json.dump(v, open(f'gw_up_{mode}.json', 'w'))
