/* dunflow designer: bpmn-js with a dunflow palette, a properties panel for the dunflow
   extension, validation markers from the API on every change, simulation and publishing. */
(function () {
  'use strict';

  const NS = 'https://dunflow.dev/schema/bpmn/1';
  const attrs = (...names) => names.map((name) => ({ name, isAttr: true, type: 'String' }));
  const CHANNEL_TYPES = ['Email', 'Sms', 'Call', 'Letter'];
  const DUNFLOW_MODDLE = {
    name: 'dunflow', uri: NS, prefix: 'dunflow', xml: { tagAlias: 'lowerCase' },
    types: [
      { name: 'Step', superClass: ['Element'], properties: attrs('type', 'channel', 'template', 'days', 'hours',
        'wake_on', 'reason', 'outcome', 'max_terms', 'min_term_cents', 'notice', 'combine', 'business_days')
        .concat([{ name: 'until', type: 'Until' }]) },
      { name: 'Until', superClass: ['Element'], properties: attrs('date', 'offset_days') },
      { name: 'When', superClass: ['Element'], properties: attrs('fact', 'step', 'key', 'cents', 'is') },
      { name: 'IfPassed', superClass: ['Element'] },
      { name: 'OnFailure', superClass: ['Element'] },
      { name: 'Signals', superClass: ['Element'], properties: [{ name: 'route', type: 'Route', isMany: true }] },
      { name: 'Route', superClass: ['Element'], properties: attrs('signal', 'action', 'outcome', 'step') },
      // the flow's contact rules; the type's name makes the tag <dunflow:contact_rules>
      { name: 'Contact_rules', superClass: ['Element'], properties: attrs('max_per_week').concat([{ name: 'hours', type: 'Hours' }]) },
      { name: 'Hours', superClass: ['Element'], properties: CHANNEL_TYPES.map((type) => ({ name: type.toLowerCase(), type })) },
      // <dunflow:sms start=.. end=..>: an element's tag names its type, so one type per channel
      ...CHANNEL_TYPES.map((name) => ({ name, superClass: ['Element'],
        properties: attrs('start', 'end', 'saturday', 'business_days_only') })),
    ],
  };
  const SIGNALS = ['full_payment', 'partial_payment', 'dispute_opened', 'dispute_upheld', 'dispute_rejected',
    'promise_to_pay', 'broken_promise', 'broken_plan'];
  const CHANNELS = ['email', 'sms', 'call', 'letter'];
  // Palette entries: what each creates.
  const KINDS = {
    email: { label: 'Send email', bpmn: 'bpmn:SendTask', step: { type: 'send', channel: 'email', template: '' }, icon: 'bpmn-icon-send-task' },
    sms: { label: 'Send SMS', bpmn: 'bpmn:SendTask', step: { type: 'send', channel: 'sms', template: '' }, icon: 'bpmn-icon-send-task' },
    call: { label: 'Robo-call', bpmn: 'bpmn:SendTask', step: { type: 'send', channel: 'call', template: '' }, icon: 'bpmn-icon-send-task' },
    letter: { label: 'Letter', bpmn: 'bpmn:SendTask', step: { type: 'send', channel: 'letter', template: '' }, icon: 'bpmn-icon-send-task' },
    wait: { label: 'Wait (timer)', bpmn: 'bpmn:IntermediateCatchEvent', step: { type: 'wait', days: '1' }, icon: 'bpmn-icon-intermediate-event-catch-timer' },
    branch: { label: 'Branch', bpmn: 'bpmn:ExclusiveGateway', icon: 'bpmn-icon-gateway-xor' },
    offer_plan: { label: 'Offer a payment plan', bpmn: 'bpmn:SendTask', step: { type: 'offer_plan', channel: 'email', template: 'plan_offer', max_terms: '6', min_term_cents: '2500' }, icon: 'bpmn-icon-business-rule-task' },
    charge_costs: { label: 'Charge collection costs', bpmn: 'bpmn:ServiceTask', step: { type: 'charge_costs' }, icon: 'bpmn-icon-service-task' },
    escalate: { label: 'Hand over to a person', bpmn: 'bpmn:UserTask', step: { type: 'escalate', reason: 'needs a person' }, icon: 'bpmn-icon-user-task' },
    end: { label: 'End', bpmn: 'bpmn:EndEvent', step: { type: 'end', outcome: 'closed' }, icon: 'bpmn-icon-end-event-none' },
  };

  const $ = (selector) => document.querySelector(selector);
  const state = { flow: null, modeler: null, errors: [], validating: 0 };

  // --- API -------------------------------------------------------------------------------

  async function api(method, path, body, contentType) {
    const headers = { Authorization: 'Bearer ' + $('#api-key').value.trim() };
    if (body !== undefined) headers['Content-Type'] = contentType || 'application/json';
    const response = await fetch(path, { method, headers, body: contentType || body === undefined ? body : JSON.stringify(body) });
    const data = (response.headers.get('content-type') || '').includes('json') ? await response.json() : await response.text();
    return { status: response.status, data };
  }

  function say(text, isError) {
    $('#status').textContent = text;
    $('#status').className = isError ? 'error' : '';
  }

  // --- building elements -----------------------------------------------------------------

  function nextId(prefix) {
    const registry = state.modeler.get('elementRegistry');
    let n = 1;
    while (registry.get(prefix + '_' + n)) n += 1;
    return prefix + '_' + n;
  }

  function newShape(kind) {
    const spec = KINDS[kind];
    const moddle = state.modeler.get('moddle');
    const bpmnFactory = state.modeler.get('bpmnFactory');
    const id = nextId(kind === 'email' || kind === 'sms' || kind === 'call' || kind === 'letter' ? 'send_' + kind : kind);
    const bo = bpmnFactory.create(spec.bpmn, { id, name: id });
    if (spec.step) {
      bo.extensionElements = moddle.create('bpmn:ExtensionElements', { values: [moddle.create('dunflow:Step', Object.assign({}, spec.step))] });
    }
    if (kind === 'wait') bo.eventDefinitions = [bpmnFactory.create('bpmn:TimerEventDefinition')];
    return state.modeler.get('elementFactory').createShape({ type: spec.bpmn, businessObject: bo });
  }

  function DunflowPalette(palette, create) {
    this.getPaletteEntries = function () {
      const entries = {};
      Object.keys(KINDS).forEach((kind) => {
        const start = (event) => create.start(event, newShape(kind));
        entries['dunflow-' + kind] = { group: 'dunflow', className: KINDS[kind].icon, title: KINDS[kind].label,
          action: { dragstart: start, click: start } };
      });
      return entries;
    };
    palette.registerProvider(this);
  }
  DunflowPalette.$inject = ['palette', 'create'];

  /** Put a new step after `element`, on the flow that left it. */
  function insertAfter(element, kind) {
    const modeling = state.modeler.get('modeling');
    const leaving = element.outgoing.slice();
    const shape = modeling.createShape(newShape(kind), { x: element.x + element.width + 90, y: element.y + element.height / 2 + 120 }, element.parent);
    if (leaving.length === 1) {
      modeling.reconnectStart(leaving[0], shape, { x: shape.x + shape.width, y: shape.y + shape.height / 2 });
    }
    modeling.connect(element, shape);
    state.modeler.get('selection').select(shape);
    return shape;
  }

  // --- dunflow properties ----------------------------------------------------------------

  function extension(bo, type) {
    return ((bo.extensionElements && bo.extensionElements.values) || []).find((value) => value.$type === type);
  }

  function field(label, value, onChange, options) {
    const wrap = document.createElement('div');
    const title = document.createElement('label');
    title.textContent = label;
    let input;
    if (options) {
      input = document.createElement('select');
      options.forEach((option) => input.add(new Option(option, option, false, option === value)));
    } else {
      input = document.createElement('input');
      input.value = value == null ? '' : value;
    }
    input.name = label;
    input.addEventListener('change', () => onChange(input.value));
    wrap.append(title, input);
    return wrap;
  }

  function updateStep(element, step, changes) {
    const clean = {};
    Object.keys(changes).forEach((key) => { clean[key] = changes[key] === '' ? undefined : changes[key]; });
    state.modeler.get('modeling').updateModdleProperties(element, step, clean);
  }

  function renderProperties(element) {
    const panel = $('#properties');
    panel.replaceChildren();
    const heading = document.createElement('h3');
    panel.append(heading);
    if (!element || element.type === 'bpmn:Process') {
      heading.textContent = 'Flow';
      renderFlowProperties(panel, state.modeler.get('canvas').getRootElement());
      return;
    }
    const bo = element.businessObject;
    const modeling = state.modeler.get('modeling');
    heading.textContent = bo.$type.replace('bpmn:', '') + ' ' + bo.id;
    if (element.type !== 'label') {
      panel.append(field('id (the step id)', bo.id, (value) => modeling.updateProperties(element, { id: value })));
    }
    const step = extension(bo, 'dunflow:Step');
    if (step) renderStep(panel, element, step);
    if (bo.$type === 'bpmn:SequenceFlow' && bo.sourceRef.$type === 'bpmn:ExclusiveGateway') renderCondition(panel, element);
    if (bo.$type === 'bpmn:SequenceFlow' && bo.sourceRef.$type === 'bpmn:SendTask') renderOnFailure(panel, element);
    if (element.outgoing && element.outgoing.length <= 1 && !element.type.endsWith('Gateway') && element.type !== 'bpmn:EndEvent') {
      const chooser = field('insert a step after this one', '', (kind) => { if (kind) insertAfter(element, kind); }, [''].concat(Object.keys(KINDS)));
      chooser.querySelector('select').id = 'insert-after';
      panel.append(chooser);
    }
  }

  function renderStep(panel, element, step) {
    const set = (name) => (value) => updateStep(element, step, { [name]: value });
    panel.append(field('type', step.type, () => {}, [step.type]));
    if (step.type === 'send' || step.type === 'offer_plan') {
      panel.append(field('channel', step.channel, set('channel'), CHANNELS));
      panel.append(field('template', step.template, set('template')));
      if (step.type === 'send') {
        panel.append(field('notice (the 14-day letter)', step.notice || '', set('notice'), ['', 'fourteen_day']));
        panel.append(field('combine with the debtor\'s other cases', step.combine || '', set('combine'), ['', 'true', 'false']));
      }
      const row = document.createElement('div');
      row.className = 'row';
      ['nl', 'en'].forEach((language) => {
        const button = document.createElement('button');
        button.textContent = 'preview ' + language;
        button.addEventListener('click', () => preview(step, language));
        row.append(button);
      });
      const box = document.createElement('div');
      box.className = 'preview';
      box.id = 'preview';
      panel.append(row, box);
    }
    if (step.type === 'offer_plan') {
      panel.append(field('max_terms', step.max_terms, set('max_terms')));
      panel.append(field('min_term_cents', step.min_term_cents, set('min_term_cents')));
    }
    if (step.type === 'wait') {
      panel.append(field('days', step.days, set('days')), field('hours', step.hours, set('hours')),
        field('business_days', step.business_days, set('business_days')));
      const until = step.until || {};
      const setUntil = (name) => (value) => {
        const moddle = state.modeler.get('moddle');
        const next = moddle.create('dunflow:Until', { date: until.date, offset_days: until.offset_days });
        next[name] = value === '' ? undefined : value;
        updateStep(element, step, { until: next.date ? next : undefined, days: undefined, hours: undefined });
      };
      panel.append(field('until date', until.date || '', setUntil('date'), ['', 'due_date', 'issue_date', 'notice_term_end']));
      panel.append(field('offset_days', until.offset_days, setUntil('offset_days')));
      panel.append(field('wake_on (space-separated)', step.wake_on, set('wake_on')));
    }
    if (step.type === 'escalate') panel.append(field('reason', step.reason, set('reason')));
    if (step.type === 'end') panel.append(field('outcome', step.outcome, set('outcome')));
  }

  function renderCondition(panel, element) {
    const bo = element.businessObject;
    const modeling = state.modeler.get('modeling');
    const moddle = state.modeler.get('moddle');
    let when = extension(bo, 'dunflow:When');
    const isDefault = bo.sourceRef.default === bo;
    panel.append(field('otherwise (default flow)', isDefault ? 'yes' : 'no', (value) => {
      modeling.updateProperties(element.source, { default: value === 'yes' ? bo : undefined });
    }, ['no', 'yes']));
    const setWhen = (name) => (value) => {
      if (!when) {
        when = moddle.create('dunflow:When', { fact: 'opened' });
        const ext = bo.extensionElements || moddle.create('bpmn:ExtensionElements', { values: [] });
        modeling.updateProperties(element, { extensionElements: ext });
        modeling.updateModdleProperties(element, ext, { values: ext.values.concat([when]) });
      }
      updateStep(element, when, { [name]: value });
    };
    const current = when || {};
    panel.append(field('when fact', current.fact || '', setWhen('fact'), ['', 'opened', 'clicked', 'key_pressed', 'amount_open_above', 'debtor_type']));
    panel.append(field('of step', current.step, setWhen('step')));
    panel.append(field('key', current.key, setWhen('key')));
    panel.append(field('cents', current.cents, setWhen('cents')));
    panel.append(field('debtor type is', current.is || '', setWhen('is'), ['', 'consumer', 'business']));
  }

  // A flow out of a send task marked <dunflow:onFailure/> is the step's on_failure.
  function renderOnFailure(panel, element) {
    const bo = element.businessObject;
    const modeling = state.modeler.get('modeling');
    const moddle = state.modeler.get('moddle');
    const marked = Boolean(extension(bo, 'dunflow:OnFailure'));
    panel.append(field('taken when the message cannot go out (on_failure)', marked ? 'yes' : 'no', (value) => {
      const ext = bo.extensionElements || moddle.create('bpmn:ExtensionElements', { values: [] });
      const kept = ext.values.filter((v) => v.$type !== 'dunflow:OnFailure');
      if (value === 'yes') kept.push(moddle.create('dunflow:OnFailure', {}));
      if (!bo.extensionElements) modeling.updateProperties(element, { extensionElements: ext });
      modeling.updateModdleProperties(element, ext, { values: kept });
      modeling.updateProperties(element, { name: value === 'yes' ? 'on failure' : undefined });
    }, ['no', 'yes']));
  }

  function renderFlowProperties(panel, root) {
    const bo = root && root.businessObject;
    if (!bo) return;  // while a diagram is being imported
    const modeling = state.modeler.get('modeling');
    const moddle = state.modeler.get('moddle');
    panel.append(field('title', bo.name, (value) => modeling.updateProperties(root, { name: value })));
    renderContactRules(panel, root, bo);
    const heading = document.createElement('h4');
    heading.textContent = 'Signal routes';
    panel.append(heading);
    let signals = extension(bo, 'dunflow:Signals');
    SIGNALS.forEach((signal) => {
      const route = signals && signals.route.find((r) => r.signal === signal);
      const row = document.createElement('div');
      row.className = 'row';
      const change = (name) => (value) => {
        if (!signals) {
          signals = moddle.create('dunflow:Signals', { route: [] });
          const ext = bo.extensionElements || moddle.create('bpmn:ExtensionElements', { values: [] });
          ext.values.push(signals);
          modeling.updateProperties(root, { extensionElements: ext });
        }
        let target = signals.route.find((r) => r.signal === signal);
        if (!target) {
          target = moddle.create('dunflow:Route', { signal, action: 'continue' });
          modeling.updateModdleProperties(root, signals, { route: signals.route.concat([target]) });
        }
        const changes = { [name]: value === '' ? undefined : value };
        if (name === 'action') Object.assign(changes, { outcome: value === 'end' ? target.outcome || signal : undefined, step: value === 'goto' ? target.step : undefined });
        modeling.updateModdleProperties(root, target, changes);
      };
      row.append(field(signal, route ? route.action : '', change('action'), ['', 'end', 'pause', 'continue', 'goto']),
        field('outcome / step', route ? route.outcome || route.step : '', (value) => change(route && route.action === 'goto' ? 'step' : 'outcome')(value)));
      panel.append(row);
    });
  }

  function renderContactRules(panel, root, bo) {
    const modeling = state.modeler.get('modeling');
    const moddle = state.modeler.get('moddle');
    const rules = extension(bo, 'dunflow:Contact_rules');
    panel.append(field('contact hours (SMS and calls Mon-Sat 08:00-21:00)', rules ? 'on' : 'off', (value) => {
      const ext = bo.extensionElements || moddle.create('bpmn:ExtensionElements', { values: [] });
      const kept = ext.values.filter((v) => v.$type !== 'dunflow:Contact_rules');
      if (value === 'on') kept.push(moddle.create('dunflow:Contact_rules', {}));
      modeling.updateModdleProperties(root, ext, { values: kept });
      if (!bo.extensionElements) modeling.updateProperties(root, { extensionElements: ext });
      renderProperties(null);
    }, ['on', 'off']));
    if (rules) {
      panel.append(field('max contacts per week (all cases)', rules.max_per_week,
        (value) => modeling.updateModdleProperties(root, rules, { max_per_week: value === '' ? undefined : value })));
    }
  }

  async function preview(step, language) {
    const path = `/api/flows/preview/${encodeURIComponent(step.channel)}/${encodeURIComponent(step.template || '')}?language=${language}`;
    const { status, data } = await api('GET', path);
    $('#preview').textContent = status === 200 ? (data.subject ? data.subject + '\n\n' : '') + data.body : data.error;
  }

  // --- validation ------------------------------------------------------------------------

  async function validate() {
    const ticket = ++state.validating;
    const { xml } = await state.modeler.saveXML({ format: true });
    const { status, data } = await api('POST', '/api/flows/validate', xml, 'application/xml');
    if (ticket !== state.validating || status !== 200) return;
    showProblems(data.errors);
  }

  function showProblems(errors) {
    const canvas = state.modeler.get('canvas');
    const overlays = state.modeler.get('overlays');
    const registry = state.modeler.get('elementRegistry');
    state.errors.forEach((error) => { if (registry.get(error.step)) canvas.removeMarker(error.step, 'dunflow-invalid'); });
    overlays.remove({ type: 'dunflow-problem' });
    state.errors = errors;
    const list = $('#problems');
    list.replaceChildren();
    errors.forEach((error) => {
      const item = document.createElement('li');
      item.textContent = error.step + ': ' + error.message;
      item.dataset.step = error.step;
      list.append(item);
      if (registry.get(error.step)) {
        canvas.addMarker(error.step, 'dunflow-invalid');
        const badge = document.createElement('div');
        badge.className = 'dunflow-problem';
        badge.title = error.message;
        badge.textContent = '!';
        overlays.add(error.step, 'dunflow-problem', { position: { top: -12, right: 8 }, html: badge });
      }
    });
    document.body.dataset.problems = String(errors.length);
  }

  // --- flows -----------------------------------------------------------------------------

  async function loadFlows() {
    localStorage.setItem('dunflow-api-key', $('#api-key').value.trim());
    const { status, data } = await api('GET', '/api/flows');
    if (status !== 200) return say(data.error || 'could not list the flows', true);
    const body = $('#flow-list tbody');
    body.replaceChildren();
    data.forEach((flow) => {
      const row = body.insertRow();
      row.dataset.flow = flow.name;
      const counts = Object.entries(flow.running_cases).map(([v, n]) => `v${v}: ${n}`).join(', ') || 'none';
      [flow.name + (flow.title ? ' — ' + flow.title : ''), flow.published_version ? 'v' + flow.published_version : '—',
        flow.draft ? `saved by ${flow.draft.saved_by}` : '—', counts].forEach((text) => { row.insertCell().textContent = text; });
      const open = document.createElement('button');
      open.textContent = 'Open';
      open.className = 'open-flow';
      open.addEventListener('click', () => openFlow(flow.name));
      row.insertCell().append(open);
    });
    $('#flows').hidden = false;
    $('#editor').hidden = true;
    if (!$('#scenario').options.length) {
      const scenarios = await api('GET', '/api/flows/scenarios');
      Object.entries(scenarios.data).forEach(([key, title]) => $('#scenario').add(new Option(title, key)));
    }
    say(`${data.length} flows`);
  }

  async function openFlow(name) {
    const { status, data } = await api('GET', `/api/flows/${encodeURIComponent(name)}/draft?format=bpmn`);
    if (status !== 200) return say(data.error || `could not open ${name}`, true);
    state.flow = name;
    $('#flows').hidden = true;
    $('#editor').hidden = false;
    await state.modeler.importXML(data.source);
    state.modeler.get('canvas').zoom('fit-viewport');
    $('#flow-title').textContent = name + (data.draft ? ' (draft)' : ` (v${data.version})`);
    ['#save', '#simulate', '#publish', '#scenario'].forEach((id) => { $(id).disabled = false; });
    renderProperties(null);
    showProblems(data.errors || []);
    document.body.dataset.flow = name;
    say(`opened ${name}`);
  }

  const DEFAULT_ROUTES = { full_payment: 'end paid', partial_payment: 'continue', dispute_opened: 'pause',
    dispute_upheld: 'end dispute_upheld', dispute_rejected: 'continue', promise_to_pay: 'pause', broken_promise: 'continue' };

  function newFlowXml(name) {
    const routes = SIGNALS.filter((signal) => DEFAULT_ROUTES[signal]).map((signal) => {  // broken_plan is optional
      const [action, outcome] = DEFAULT_ROUTES[signal].split(' ');
      return `<dunflow:route signal="${signal}" action="${action}"${outcome ? ` outcome="${outcome}"` : ''} />`;
    }).join('');
    return `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:dunflow="${NS}" id="Definitions_${name}" targetNamespace="${NS}">
  <bpmn:process id="${name}" isExecutable="true">
    <bpmn:extensionElements><dunflow:signals>${routes}</dunflow:signals></bpmn:extensionElements>
    <bpmn:startEvent id="Start"><bpmn:outgoing>Flow_Start_closed</bpmn:outgoing></bpmn:startEvent>
    <bpmn:endEvent id="closed" name="closed"><bpmn:extensionElements><dunflow:step type="end" outcome="closed" /></bpmn:extensionElements><bpmn:incoming>Flow_Start_closed</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_Start_closed" sourceRef="Start" targetRef="closed" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="Diagram_${name}"><bpmndi:BPMNPlane id="Plane_${name}" bpmnElement="${name}">
    <bpmndi:BPMNShape id="Start_di" bpmnElement="Start"><dc:Bounds x="180" y="100" width="36" height="36" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="closed_di" bpmnElement="closed"><dc:Bounds x="420" y="100" width="36" height="36" /></bpmndi:BPMNShape>
    <bpmndi:BPMNEdge id="Flow_Start_closed_di" bpmnElement="Flow_Start_closed"><di:waypoint x="216" y="118" /><di:waypoint x="420" y="118" /></bpmndi:BPMNEdge>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>`;
  }

  async function newFlow() {
    const name = (window.prompt('Name of the new flow (lower_snake_case, e.g. business_strict)') || '').trim();
    if (!name) return;
    const { status, data } = await api('POST', '/api/flows', newFlowXml(name), 'application/xml');
    if (status !== 201) return say(data.error, true);
    await openFlow(name);
  }

  async function saveDraft() {
    const { xml } = await state.modeler.saveXML({ format: true });
    const { status, data } = await api('PUT', `/api/flows/${state.flow}/draft`, xml, 'application/xml');
    if (status === 200) { say('draft saved'); showProblems([]); return true; }
    if (data.errors) showProblems(data.errors);
    say(data.draft_saved ? 'draft saved, but it cannot be published yet: ' + data.error : data.error, true);
    return false;
  }

  async function publish() {
    if (!(await saveDraft())) return;
    const { status, data } = await api('POST', `/api/flows/${state.flow}/publish`);
    if (status !== 200) return say(data.error, true);
    say(`published ${data.name} version ${data.version}`);
    $('#flow-title').textContent = `${data.name} (v${data.version})`;
  }

  async function simulate() {
    if (!(await saveDraft())) return;
    const scenario = $('#scenario').value;
    say(`simulating ${scenario} …`);
    const { status, data } = await api('POST', `/api/flows/${state.flow}/simulate`, { scenario });
    if (status !== 200) return say(data.error, true);
    const section = $('#timeline');
    section.replaceChildren();
    const heading = document.createElement('h3');
    heading.textContent = `${data.scenario_title}: ${data.status}${data.outcome ? ' (' + data.outcome + ')' : ''} at ${data.current_step}`;
    const table = document.createElement('table');
    data.days.forEach((day) => day.events.forEach((event, index) => {
      const row = table.insertRow();
      row.className = 'timeline-event';
      [index === 0 ? `day ${day.day} (${day.date})` : '', event.time, event.kind, event.step || '', event.detail]
        .forEach((text) => { row.insertCell().textContent = text; });
    }));
    section.append(heading, table);
    section.hidden = false;
    say(`simulated ${scenario} in ${data.seconds} s`);
  }

  async function start() {
    if (typeof BpmnJS === 'undefined') {
      return say('bpmn-js is not installed: run `npm ci` in designer/ (scripts/install.sh does this)', true);
    }
    state.modeler = new BpmnJS({
      container: '#canvas',
      moddleExtensions: { dunflow: DUNFLOW_MODDLE },
      additionalModules: [{ __init__: ['dunflowPalette'], dunflowPalette: ['type', DunflowPalette] }],
    });
    let timer = null;
    state.modeler.on('commandStack.changed', () => {
      clearTimeout(timer);
      timer = setTimeout(validate, 300);
      const selected = state.modeler.get('selection').get();
      renderProperties(selected.length === 1 ? selected[0] : null);
    });
    state.modeler.on('selection.changed', (event) => renderProperties(event.newSelection.length === 1 ? event.newSelection[0] : null));
    $('#api-key').value = localStorage.getItem('dunflow-api-key') || '';
    $('#load-flows').addEventListener('click', loadFlows);
    $('#new-flow').addEventListener('click', newFlow);
    $('#save').addEventListener('click', saveDraft);
    $('#publish').addEventListener('click', publish);
    $('#simulate').addEventListener('click', simulate);
    $('#problems').addEventListener('click', (event) => {
      const element = state.modeler.get('elementRegistry').get(event.target.dataset.step);
      if (element) state.modeler.get('selection').select(element);
    });
    if ($('#api-key').value) await loadFlows();
    else say('enter an API key with the designer scope, then press Flows');
    window.dunflowDesigner = { state, openFlow, insertAfter, validate };
  }

  start();
}());
