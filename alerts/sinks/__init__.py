"""Alert sinks, one module each (console, webhook, e-mail, MQTT), and the per-sink dispatcher."""
