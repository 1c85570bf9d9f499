with

source as (

    select * from {{ ref('raw_customers') }}

),

renamed as (

    select
        id as customer_id,
        first_name,
        last_name,
        signup_date as signed_up_on,
        first_name || ' ' || last_name as full_name,
        lower(email) as email,
        upper(country) as country_code,
        -- QA accounts are created with addresses on the shop's test domain.
        lower(email) like '%@jaffle.test' as is_test_customer
    from source

)

select * from renamed
