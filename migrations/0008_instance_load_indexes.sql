-- Written by hand after drizzle-kit generate, which splits index expressions at their commas.
CREATE INDEX `instances_cell_load` ON `instances` (`cell_guid`,`state`,json_extract(`spec`, '$.memory_mb'),json_extract(`spec`, '$.disk_mb'));--> statement-breakpoint
CREATE INDEX `instances_state_since` ON `instances` (`state`,`since`);
