CREATE TABLE `jobs` (
	`guid` text PRIMARY KEY NOT NULL,
	`operation` text NOT NULL,
	`state` text NOT NULL,
	`errors` text NOT NULL,
	`user_guid` text NOT NULL,
	`created_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL,
	`updated_at` text DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')) NOT NULL
);
