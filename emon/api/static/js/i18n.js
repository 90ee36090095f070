// Every label of the pages in Dutch and English. A key missing in one language is a bug (a browser
// test compares the two); the page falls back to Dutch, then to the key itself.
export const LABELS = {
  nl: {
    // shared
    lang_toggle: "EN", logout: "Afmelden", login_title: "Aanmelden", login_token: "Toegangstoken",
    login_hint: "Eenmaal aanmelden geldt voor alle tabbladen van deze browser, tot u afmeldt of de browser sluit.",
    login_go: "Aanmelden", login_bad: "Token ongeldig of zonder toegang.", failed: "Mislukt", cancel: "Annuleren",
    nav_room: "Meldkamer", nav_feas: "Handhaafbaarheid", nav_cases: "Zaken", nav_docs: "API",
    fit: "Alles", ago: "geleden", home: "woning", by: "door", case: "Zaak", risk: "Risico",
    r_low: "laag", r_medium: "midden", r_high: "hoog", map_grid: "Geen achtergrondkaart ingesteld (EMON_MAP_TILE_URL): eenvoudig raster.",
    // room
    title: "Meldkamer toezicht", conn_off: "Niet verbonden", conn_live: "Live", conn_wait: "Opnieuw verbinden…",
    queue: "Meldingen", tab_open: "Open", tab_resolved: "Afgehandeld", queue_empty: "Geen meldingen.",
    no_case: "Kies een melding", detail: "Details", detail_none: "Geen melding gekozen.",
    lg_excl: "Verbodsgebied", lg_incl: "Gebodsgebied", lg_off: "Dader (± nauwkeurigheid)",
    lg_vic: "Slachtoffer (alleen bij open melding)", lg_home: "Woonadres dader", lg_track: "Sporen dader (incident)",
    lg_ban: "Contactverbod", offender: "Dader", victim: "Slachtoffer",
    resolve_title: "Melding afhandelen", outcome: "Uitkomst", note: "Notitie", resolve: "Afhandelen",
    ack: "Bevestigen", ack_key: "Bevestigen (A)", note_required: "Een sabotagemelding vraagt een notitie.",
    st_open: "open", st_acknowledged: "bevestigd", st_resolved: "afgehandeld",
    late: "laat", escalated: "geëscaleerd", suppressed: "onderdrukt", replay: "na-ingestie",
    victim_hidden: "Slachtoffer niet getoond: geen open melding.", victim_none: "Geen positie slachtoffer bekend.",
    offender_none: "Geen positie dader bekend.", type: "Soort", rule: "Regel", state: "Status",
    priority: "Prioriteit", opened: "Geopend", acked: "Bevestigd", resolved_at: "Afgehandeld",
    distance: "Afstand", closest: "Kleinste afstand", device: "Apparaat", recipients: "Ontvangers",
    explanation: "Toelichting", raw_json: "Ruwe gegevens (JSON)", deadline: "Bevestigen binnen",
    overdue: "te laat", no_deadline: "geen termijn", group_more: "meldingen in deze episode",
    sound_on: "Geluid aan", sound_off: "Geluid uit", keys_hint: "Toetsen: ↑/↓ kiezen, A bevestigen, R afhandelen",
    new_critical: "Nieuwe kritieke melding",
    purpose: "Doel van inzage", purpose_none: "— kies een doel —", p_alert_response: "Melding afhandelen",
    p_dispatch: "Politie inzetten of begeleiden", p_victim_contact: "Contact met of bescherming van slachtoffer",
    p_investigation: "Onderzoek",
    victim_purpose_required: "Positie slachtoffer niet getoond: kies eerst een doel van inzage.",
    stream_ended: "Uw toegang is beëindigd (token ingetrokken of verlopen, of afgemeld). Meld u opnieuw aan.",
    tasks: "Taken", tasks_empty: "Geen open taken.", task_done: "Gedaan", task_done_title: "Taak afronden",
    task_inform_victim: "Slachtoffer telefonisch informeren", task_check_possible: "Verse positie verkrijgen en controleren",
    x_order_version: "Geldende versie van de maatregel: {n}.",
    // devices
    dev_tag: "enkelband", dev_victim: "apparaat slachtoffer",
    // explanation sentences (placeholders in {braces})
    x_rule_excl: "Regel: verbodsgebied '{zone}'.", x_rule_incl: "Regel: gebodsgebied '{zone}'.",
    x_rule_prox: "Regel: contactverbod van {ban}.", x_rule_order: "Regel: looptijd van de maatregel.",
    x_rule_device: "Regel: apparaatmelding van {device}.",
    x_fix: "{who}: positie van {time}, nauwkeurigheid ±{acc}, {age} oud bij het besluit.",
    x_dist_inside: "De positie ligt {d} binnen de rand van het gebied.",
    x_dist_outside: "De positie ligt {d} buiten de rand van het gebied.",
    x_dist_prox: "Afstand tussen dader en slachtoffer: {d} (verbod: {ban}).",
    x_closest: "Kleinste afstand tot nu toe: {d}.",
    x_breach: "Bewezen: ook met de onnauwkeurigheid van de posities meegerekend is de regel overtreden.",
    x_possible: "Alleen mogelijk: de onnauwkeurigheidscirkel raakt de grens; de persoon kan ook aan de goede kant zijn.",
    x_clear: "Geen overtreding volgens de posities.",
    x_late: "Laat binnengekomen posities: vastgelegd voor toezicht, geen live waarschuwing.",
    x_jump: "Let op: onwaarschijnlijke sprong in de positie (mogelijk een uitschieter).",
    x_no_fresh: "Geen verse positie beschikbaar.",
    x_event: "Apparaat {device} meldde '{event}' om {time}.",
    x_silent: "Apparaat {device} is stil sinds {time} ({age}).",
    x_notified: "emon waarschuwde: {who}.", x_notified_none: "emon heeft (nog) niemand gewaarschuwd.",
    x_escalated: "Geëscaleerd: niet op tijd bevestigd.", x_suppressed: "Onderdrukt tijdens een onderhoudsperiode.",
    x_locate: "Een 'locate-now'-verzoek is naar het apparaat gestuurd.",
    x_acked: "Bevestigd om {time} door {who}.",
    // feasibility
    feas_title: "Handhaafbaarheid locatieverbod", feas_intro: "Plaats de woning, beschermde en verplichte plaatsen en teken de zones; of laad een bestaand verzoek.",
    tool_residence: "Woning", tool_protected: "Beschermde plaats", tool_mandatory: "Verplichte plaats",
    tool_circle: "Cirkelzone", tool_polygon: "Veelhoekzone", tool_finish: "Veelhoek klaar", tool_none: "Kiezen",
    tool_hint: "Klik op de kaart om te plaatsen. Cirkel: klik het middelpunt. Veelhoek: klik de hoeken, dan 'Veelhoek klaar'.",
    f_name: "Naam", f_radius: "Straal (m)", f_zone_kind: "Soort zone", f_exclusion: "verbod", f_inclusion: "gebod",
    f_contact: "Contactverbod (m)", f_victim_device: "Slachtoffer krijgt een apparaat",
    f_valid_from: "Geldig vanaf", f_valid_until: "Geldig tot", f_coords: "Coördinaten typen",
    f_coords_hint: "RD (x y, meters) of WGS84 (breedte lengte, graden)", f_add: "Toevoegen", f_remove: "weg",
    f_upload: "Verzoek laden (JSON)", f_check: "Beoordelen", f_print: "Rapport afdrukken", f_download: "Rapport downloaden (HTML)",
    f_json: "Verzoek als JSON", f_apply_json: "JSON toepassen", f_items: "Ingevoerd", f_report: "Rapport",
    verdict: "Oordeel", yes: "HANDHAAFBAAR", no: "NIET HANDHAAFBAAR", findings: "Bevindingen",
    suggestions: "Alternatieven", none: "geen", sev_blocking: "blokkerend", sev_warning: "waarschuwing", sev_info: "info",
    workable: "haalbaar", not_workable: "niet voldoende", guideline: "Richtlijn 1.000 m rond woning",
    lg_guideline: "Richtlijn rond woning", lg_suggested: "Voorgestelde zone", lg_protected: "Beschermde plaats",
    lg_mandatory: "Verplichte plaats", no_circle: "geen vaste cirkel mogelijk", report_for: "Rapport handhaafbaarheid",
    report_made: "Opgesteld", bad_coords: "Onbekende coördinaten: geef x y (RD) of breedte lengte (WGS84).",
    need_residence: "Plaats eerst de woning.", fig_distance_m: "afstand", fig_required_m: "nodig",
    fig_shortfall_m: "tekort", fig_max_radius_m: "grootst mogelijke straal", fig_centre_distance_m: "afstand middelpunt",
    fig_contact_ban_m: "contactverbod", fig_guideline_m: "richtlijn", fig_radius_m: "straal", fig_depth_m: "diepte",
    fig_margin_m: "marge", fig_width_m: "breedte",
    // casework
    cw_title: "Zaken reclassering", cw_new: "Nieuwe zaak", cw_save: "Opslaan", cw_saved: "Opgeslagen.",
    cw_close: "Zaak sluiten", cw_list: "Zaken", cw_case_id: "Zaaknummer", cw_offender_device: "Enkelband (id)",
    cw_victim_device: "Apparaat slachtoffer (id)", cw_expiry: "Looptijd", cw_expires_in: "loopt af over {n} dagen",
    cw_expired: "afgelopen", cw_open_ended: "geen einddatum", cw_history: "Geschiedenis", cw_status: "Status",
    cw_open: "open", cw_closed: "gesloten", a_create: "aangemaakt", a_update: "gewijzigd", a_close: "gesloten",
    cw_version: "versie {n}", cw_reason: "Reden van de wijziging", cw_no_reason: "geen reden opgegeven",
    k_smaller_circle: "kleinere cirkel", k_trimmed_polygon: "ingekorte zone", k_dynamic_monitoring: "dynamische bewaking",
  },
  en: {
    lang_toggle: "NL", logout: "Sign out", login_title: "Sign in", login_token: "Access token",
    login_hint: "Signing in once holds for every tab of this browser, until you sign out or close the browser.",
    login_go: "Sign in", login_bad: "Token invalid or not allowed.", failed: "Failed", cancel: "Cancel",
    nav_room: "Monitoring room", nav_feas: "Enforceability", nav_cases: "Cases", nav_docs: "API",
    fit: "Fit", ago: "ago", home: "residence", by: "by", case: "Case", risk: "Risk",
    r_low: "low", r_medium: "medium", r_high: "high", map_grid: "No base map configured (EMON_MAP_TILE_URL): plain grid.",
    title: "Monitoring room", conn_off: "Disconnected", conn_live: "Live", conn_wait: "Reconnecting…",
    queue: "Alerts", tab_open: "Open", tab_resolved: "Resolved", queue_empty: "No alerts.",
    no_case: "Select an alert", detail: "Details", detail_none: "No alert selected.",
    lg_excl: "Exclusion zone", lg_incl: "Inclusion zone", lg_off: "Offender (± accuracy)",
    lg_vic: "Victim (only with an open alert)", lg_home: "Offender residence", lg_track: "Offender fixes (incident)",
    lg_ban: "Contact ban", offender: "Offender", victim: "Victim",
    resolve_title: "Resolve alert", outcome: "Outcome", note: "Note", resolve: "Resolve",
    ack: "Acknowledge", ack_key: "Acknowledge (A)", note_required: "A tamper alert needs a note.",
    st_open: "open", st_acknowledged: "acknowledged", st_resolved: "resolved",
    late: "late", escalated: "escalated", suppressed: "suppressed", replay: "late upload",
    victim_hidden: "Victim not shown: no open alert.", victim_none: "No victim position known.",
    offender_none: "No offender position known.", type: "Type", rule: "Rule", state: "State",
    priority: "Priority", opened: "Opened", acked: "Acknowledged", resolved_at: "Resolved",
    distance: "Distance", closest: "Closest", device: "Device", recipients: "Recipients",
    explanation: "Explanation", raw_json: "Raw data (JSON)", deadline: "Acknowledge within",
    overdue: "overdue", no_deadline: "no deadline", group_more: "alerts in this episode",
    sound_on: "Sound on", sound_off: "Sound off", keys_hint: "Keys: ↑/↓ select, A acknowledge, R resolve",
    new_critical: "New critical alert",
    purpose: "Purpose of access", purpose_none: "— choose a purpose —", p_alert_response: "Handling an alert",
    p_dispatch: "Sending or guiding police", p_victim_contact: "Contacting or protecting the victim",
    p_investigation: "Investigation",
    victim_purpose_required: "Victim's position not shown: choose a purpose of access first.",
    stream_ended: "Your access has ended (token revoked or expired, or signed out). Please sign in again.",
    tasks: "Tasks", tasks_empty: "No open tasks.", task_done: "Done", task_done_title: "Complete task",
    task_inform_victim: "Inform the victim by phone", task_check_possible: "Obtain a fresh position and check",
    x_order_version: "Order version in force: {n}.",
    dev_tag: "ankle tag", dev_victim: "victim's device",
    x_rule_excl: "Rule: exclusion zone '{zone}'.", x_rule_incl: "Rule: inclusion zone '{zone}'.",
    x_rule_prox: "Rule: contact ban of {ban}.", x_rule_order: "Rule: the order's period.",
    x_rule_device: "Rule: device report of {device}.",
    x_fix: "{who}: fix of {time}, accuracy ±{acc}, {age} old when decided.",
    x_dist_inside: "The fix lies {d} inside the zone's edge.",
    x_dist_outside: "The fix lies {d} outside the zone's edge.",
    x_dist_prox: "Distance between offender and victim: {d} (ban: {ban}).",
    x_closest: "Closest so far: {d}.",
    x_breach: "Provable: even allowing for the fixes' accuracy, the rule is broken.",
    x_possible: "Only possible: the accuracy circle overlaps the boundary; the person may be on the right side.",
    x_clear: "No violation according to the fixes.",
    x_late: "Fixes arrived late: recorded for probation, not sent as a live warning.",
    x_jump: "Note: implausible jump in position (possibly an outlier).",
    x_no_fresh: "No fresh position available.",
    x_event: "Device {device} reported '{event}' at {time}.",
    x_silent: "Device {device} silent since {time} ({age}).",
    x_notified: "emon notified: {who}.", x_notified_none: "emon has notified nobody (yet).",
    x_escalated: "Escalated: not acknowledged in time.", x_suppressed: "Suppressed during a maintenance window.",
    x_locate: "A locate-now request was sent to the device.",
    x_acked: "Acknowledged at {time} by {who}.",
    feas_title: "Enforceability of a location ban", feas_intro: "Place the residence, protected and mandatory places and draw the zones; or load an existing request.",
    tool_residence: "Residence", tool_protected: "Protected place", tool_mandatory: "Mandatory place",
    tool_circle: "Circle zone", tool_polygon: "Polygon zone", tool_finish: "Finish polygon", tool_none: "Select",
    tool_hint: "Click the map to place. Circle: click its centre. Polygon: click the corners, then 'Finish polygon'.",
    f_name: "Name", f_radius: "Radius (m)", f_zone_kind: "Zone kind", f_exclusion: "exclusion", f_inclusion: "inclusion",
    f_contact: "Contact ban (m)", f_victim_device: "Victim gets a device",
    f_valid_from: "Valid from", f_valid_until: "Valid until", f_coords: "Type coordinates",
    f_coords_hint: "RD (x y, metres) or WGS84 (latitude longitude, degrees)", f_add: "Add", f_remove: "remove",
    f_upload: "Load request (JSON)", f_check: "Check", f_print: "Print report", f_download: "Download report (HTML)",
    f_json: "Request as JSON", f_apply_json: "Apply JSON", f_items: "Entered", f_report: "Report",
    verdict: "Verdict", yes: "ENFORCEABLE", no: "NOT ENFORCEABLE", findings: "Findings",
    suggestions: "Alternatives", none: "none", sev_blocking: "blocking", sev_warning: "warning", sev_info: "info",
    workable: "workable", not_workable: "falls short", guideline: "1,000 m guideline around the residence",
    lg_guideline: "Guideline around residence", lg_suggested: "Suggested zone", lg_protected: "Protected place",
    lg_mandatory: "Mandatory place", no_circle: "no fixed circle is possible", report_for: "Enforceability report",
    report_made: "Prepared", bad_coords: "Unknown coordinates: give x y (RD) or latitude longitude (WGS84).",
    need_residence: "Place the residence first.", fig_distance_m: "distance", fig_required_m: "required",
    fig_shortfall_m: "shortfall", fig_max_radius_m: "largest possible radius", fig_centre_distance_m: "centre distance",
    fig_contact_ban_m: "contact ban", fig_guideline_m: "guideline", fig_radius_m: "radius", fig_depth_m: "depth",
    fig_margin_m: "margin", fig_width_m: "width",
    cw_title: "Probation cases", cw_new: "New case", cw_save: "Save", cw_saved: "Saved.",
    cw_close: "Close case", cw_list: "Cases", cw_case_id: "Case number", cw_offender_device: "Ankle tag (id)",
    cw_victim_device: "Victim device (id)", cw_expiry: "Period", cw_expires_in: "ends in {n} days",
    cw_expired: "ended", cw_open_ended: "no end date", cw_history: "History", cw_status: "Status",
    cw_open: "open", cw_closed: "closed", a_create: "created", a_update: "changed", a_close: "closed",
    cw_version: "version {n}", cw_reason: "Reason for the change", cw_no_reason: "no reason given",
    k_smaller_circle: "smaller circle", k_trimmed_polygon: "trimmed zone", k_dynamic_monitoring: "dynamic monitoring",
  },
};

// The alert service's vocabulary (emon/alerts/types.py); an unknown value is shown as is.
export const TYPES = {
  nl: { exclusion_pre_alert: "Vooralarm verbodsgebied", exclusion_breach: "Verbodsgebied betreden",
    inclusion_breach: "Gebodsgebied verlaten", proximity_pre_alert: "Vooralarm nadering",
    proximity_breach: "Contactverbod: te dichtbij", proximity_unknown: "Afstand onbekend",
    retrospective_violation: "Overtreding achteraf", crossing_suspected: "Vermoedelijke doorkruising",
    tamper: "Sabotage", strap_open: "Band geopend", battery_low: "Batterij laag", battery_critical: "Batterij kritiek",
    no_fix: "Geen positie", no_communication: "Geen verbinding", panic: "Paniekknop", order_expiring: "Maatregel loopt af" },
  en: { exclusion_pre_alert: "Exclusion pre-alert", exclusion_breach: "Exclusion zone entered",
    inclusion_breach: "Inclusion zone left", proximity_pre_alert: "Proximity pre-alert",
    proximity_breach: "Contact ban: too close", proximity_unknown: "Distance unknown",
    retrospective_violation: "Retrospective violation", crossing_suspected: "Suspected crossing",
    tamper: "Tamper", strap_open: "Strap opened", battery_low: "Battery low", battery_critical: "Battery critical",
    no_fix: "No position", no_communication: "No communication", panic: "Panic button", order_expiring: "Order expiring" },
};
export const PRIORITIES = {
  nl: { critical: "KRITIEK", high: "HOOG", normal: "NORMAAL", low: "LAAG" },
  en: { critical: "CRITICAL", high: "HIGH", normal: "NORMAL", low: "LOW" },
};
export const RECIPIENTS = {
  nl: { victim: "apparaat slachtoffer", probation: "meldkamer reclassering", police: "politie (meldkamer)" },
  en: { victim: "victim's device", probation: "probation monitoring room", police: "police dispatch" },
};
export const OUTCOMES = {
  nl: { intervened: "Ingegrepen", police_dispatched: "Politie ingezet", contact_made: "Contact met betrokkene",
    false_alarm: "Vals alarm", technical: "Technisch probleem", other: "Anders" },
  en: { intervened: "Intervened", police_dispatched: "Police dispatched", contact_made: "Contacted person",
    false_alarm: "False alarm", technical: "Technical problem", other: "Other" },
};
export const VOCABULARIES = { LABELS, TYPES, PRIORITIES, RECIPIENTS, OUTCOMES };

const LANG_KEY = "emon.lang";
let current = localStorage.getItem(LANG_KEY) === "en" ? "en" : "nl";

export const lang = () => current;
export function setLang(value) {
  current = value === "en" ? "en" : "nl";
  localStorage.setItem(LANG_KEY, current);
  document.documentElement.lang = current;
}
/** The label ``key`` in the current language, with {name} placeholders filled from ``values``. */
export function t(key, values = {}) {
  const text = LABELS[current][key] ?? LABELS.nl[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in values ? String(values[name]) : m));
}
export const typeLabel = (type) => TYPES[current][type] ?? String(type ?? "?");
export const prioLabel = (p) => PRIORITIES[current][p] ?? String(p ?? "–");
export const recipientLabel = (r) => RECIPIENTS[current][r] ?? String(r);
export const outcomeLabel = (o) => OUTCOMES[current][o] ?? String(o ?? "");
/** Every element with data-i18n gets its label (textContent), data-i18n-title its title. */
export function applyLabels(root = document) {
  document.documentElement.lang = current;
  for (const e of root.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of root.querySelectorAll("[data-i18n-title]")) e.title = t(e.dataset.i18nTitle);
}
