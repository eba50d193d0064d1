// Just enough of Grafana's dashboard model for Hearth's dashboards: time
// series panels laid out two per row, queries on a data source variable.
{
  // A Prometheus query of a panel; `legend` is Grafana's legend format.
  target(expr, legend=''):: { expr: expr, legendFormat: legend, refId: 'A' },

  // A time series panel; `unit` is a Grafana unit (short, s, bytes, ops...).
  timeseries(title, targets, unit='short'):: {
    type: 'timeseries',
    title: title,
    datasource: { type: 'prometheus', uid: '${datasource}' },
    fieldConfig: { defaults: { unit: unit } },
    targets: [t { refId: std.char(65 + i) } for i in std.range(0, std.length(targets) - 1) for t in [targets[i]]],
  },

  // A row header above the panels that follow it.
  row(title):: { type: 'row', title: title, collapsed: false },

  // A dashboard of `panels` (rows take the full width, other panels half), with ids and positions filled in.
  dashboard(title, uid, panels):: {
    local place(acc, p) =
      local width = if p.type == 'row' then 24 else 12;
      local height = if p.type == 'row' then 1 else 8;
      local wrap = acc.x + width > 24;
      local x = if wrap then 0 else acc.x;
      local y = if wrap then acc.y + acc.h else acc.y;
      {
        x: x + width,
        y: y,
        h: height,
        panels: acc.panels + [p { id: std.length(acc.panels) + 1, gridPos: { x: x, y: y, w: width, h: height } }],
      },
    title: title,
    uid: uid,
    tags: ['hearth'],
    editable: true,
    schemaVersion: 39,
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    templating: {
      list: [{ name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {} }],
    },
    panels: std.foldl(place, panels, { x: 0, y: 0, h: 0, panels: [] }).panels,
  },
}
